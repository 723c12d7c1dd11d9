"""Forget faces in a CLIP vision encoder: `hf-forget vision` as a script, for `accelerate launch`.

    accelerate launch examples/forget_faces.py --model_name_or_path DIR --faces faces/ \
        --clean_images images/ --reference_faces other_faces/ --output_dir defended

Every option of `hf-forget vision --help` works here.
"""

import sys

from hf_forget.cli import main

if __name__ == "__main__":
    sys.exit(main(["vision", *sys.argv[1:]]))
