"""Casework: one questioned image or video -> a bounded likelihood-ratio statement per face.

The top layer of the project (it may import every other package; nothing imports it). The
command is ``evidence.py`` at the repository root; the logic lives here:

- :mod:`casework.outcome`: exit codes and the error that carries one;
- :mod:`casework.inputs`: reading the questioned file (stage 01's reader and sampling), bad input;
- :mod:`casework.scoring`: crops -> stage 04's features -> the LR system's score;
- :mod:`casework.faces`: faces found and followed across frames with stage 01's cropper;
- :mod:`casework.statement`: the headline, the verbal equivalent, the technical annex, conditions;
- :mod:`casework.custody`: hashes, code version, the case folder that is never overwritten;
- :mod:`casework.report`: ``evidence.json``, ``evidence.html``, ``evidence.pdf``, figures;
- :mod:`casework.command`: the whole command, end to end.
"""

import os as _os

# FFmpeg's own messages ("moov atom not found", "invalid len") would add lines to the command's
# one-line outcome; the command states what it found instead. Set before OpenCV's FFmpeg backend starts.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
