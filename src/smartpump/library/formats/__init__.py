"""Drug-library file formats: canonical JSON (+ JSON Schema), CSV and XLSX for pharmacists."""
