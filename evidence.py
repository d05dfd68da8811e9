"""The casework command: a bounded likelihood-ratio statement for one questioned image or video.

    python evidence.py --config CONFIG --input FILE [--output CASES_DIR] [--case-id NAME]
                       [--allow-outside-conditions] [--set key=value ...]

Loads the run's saved LR system (``evidence.lr_system``, default ``<output_dir>/10_kde_lr/system``)
and detector; finds, aligns and crops the faces with stage 01's cropper and options; scores them as
stages 04/08 do; gives per face the bounded LR, its log10 and verbal equivalent for the configured
propositions, or no LR when the item lies outside the validated conditions. Writes the case folder
``<CASES_DIR>/<input name>_<first 12 hex of its SHA-256>/`` (``evidence.json``, ``evidence.html``,
``evidence.pdf``, ``face_N.png``, ``overview.png``), never over another input's case.

Exit codes: 0 = LR given for at least one face; 2 = bad config/arguments or missing/tampered run
outputs; 3 = no face found; 4 = outside the validated conditions, no LR given (unless
--allow-outside-conditions); 5 = input not usable (missing, unreadable, folder, 0 bytes, not an
image or video); 6 = the case folder belongs to another input. Logic: ``casework/``.
"""
from __future__ import annotations

import sys

from casework.command import main

if __name__ == "__main__":
    sys.exit(main(description=__doc__))
