//! multishap-report
