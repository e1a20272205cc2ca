//! DICOM import and export (filled in below).
