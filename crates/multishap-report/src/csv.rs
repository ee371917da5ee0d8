//! Minimal RFC 4180 CSV writing (quotes fields containing `,`, `"`, CR or LF).
use crate::error::{io_err, Result};
use std::path::Path;

/// Quote one field if needed.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Render a table with a header row; lines end with `\n`.
pub fn to_string(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = String>| cells.collect::<Vec<_>>().join(",") + "\n";
    out.push_str(&line(&mut header.iter().map(|h| field(h))));
    for r in rows {
        out.push_str(&line(&mut r.iter().map(|c| field(c))));
    }
    out
}

pub fn write(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    std::fs::write(path, to_string(header, rows)).map_err(io_err(path))
}

/// Optional float as a CSV cell (empty when absent).
pub fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let s = to_string(
            &["a", "b"],
            &[
                vec!["x,y".into(), "say \"hi\"".into()],
                vec!["1".into(), "".into()],
            ],
        );
        assert_eq!(s, "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n1,\n");
    }
}
