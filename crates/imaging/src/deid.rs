//! DICOM de-identification (filled in below).
