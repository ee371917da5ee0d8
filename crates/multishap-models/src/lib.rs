//! multishap-models
