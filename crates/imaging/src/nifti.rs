//! NIfTI-1 import and export (filled in below).
