//! multishap-engine
