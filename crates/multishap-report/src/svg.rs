//! Small hand-written SVG figures (no fonts needed: the browser renders the text):
//! the token x patch matrix, colorbars, histograms and horizontal bar charts.
use crate::colormap;
use crate::schema::ExplanationRecord;
use std::fmt::Write as _;

/// Escape text for XML / HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Compact number formatting for labels.
pub fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        format!("{v:.2e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

const FONT: &str = r#"font-family="sans-serif" font-size="11""#;

fn gradient_defs(id: &str, vertical: bool) -> String {
    let (x2, y2) = if vertical { ("0", "0") } else { ("1", "0") };
    let (x1, y1) = if vertical { ("0", "1") } else { ("0", "0") };
    let mut s =
        format!(r#"<defs><linearGradient id="{id}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}">"#);
    for k in 0..=20 {
        let t = -1.0 + 2.0 * k as f64 / 20.0;
        let _ = write!(
            s,
            r#"<stop offset="{:.3}" stop-color="{}"/>"#,
            k as f64 / 20.0,
            colormap::hex(colormap::rdbu(t))
        );
    }
    s.push_str("</linearGradient></defs>");
    s
}

/// A horizontal colorbar from `-scale` (blue) to `+scale` (red), as a standalone SVG.
pub fn colorbar_svg(scale: f64, width: u32, label: &str) -> String {
    let w = width.max(120);
    let bar_w = w - 20;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="46" viewBox="0 0 {w} 46" {FONT}>{defs}<rect x="10" y="4" width="{bar_w}" height="14" fill="url(#cbh)" stroke="#888"/><text x="10" y="32">{lo}</text><text x="{mid}" y="32" text-anchor="middle">0</text><text x="{hi}" y="32" text-anchor="end">{hi_v}</text><text x="{mid}" y="44" text-anchor="middle">{label}</text></svg>"##,
        defs = gradient_defs("cbh", false),
        lo = escape(&num(-scale)),
        mid = 10 + bar_w / 2,
        hi = 10 + bar_w,
        hi_v = escape(&num(scale)),
        label = escape(label),
    )
}

/// The token x patch SII matrix (rows: tokens, columns: patches in row-major grid order) with
/// token labels, grid-row ticks and a vertical colorbar; symmetric scale `max |SII|`.
pub fn matrix_svg(record: &ExplanationRecord) -> String {
    let m = record.image_players();
    let n = record.text_players();
    let scale = record.sii_values().fold(0.0f64, |a, v| a.max(v.abs()));
    let label_w = 16
        + 7 * record
            .tokens
            .iter()
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(1)
            .min(24) as u32;
    let cell_w = (720 / m.max(1) as u32).clamp(3, 28);
    let cell_h = 18u32;
    let top = 34u32;
    let grid_w = cell_w * m as u32;
    let grid_h = cell_h * n as u32;
    let cb_x = label_w + grid_w + 24;
    let cb_h = grid_h.max(120);
    let width = cb_x + 16 + 70;
    let height = top + cb_h.max(grid_h) + 40;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" {FONT}>"#
    );
    s.push_str(&gradient_defs("cbv", true));
    let _ = write!(
        s,
        r#"<text x="{label_w}" y="14">SII per token (rows) and patch (columns, row-major over the {}x{} grid)</text>"#,
        record.grid.rows, record.grid.cols
    );
    for (j, tok) in record.tokens.iter().enumerate() {
        let y = top + j as u32 * cell_h;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 6,
            y + cell_h - 5,
            escape(tok)
        );
        for i in 0..m {
            let v = record.sii[i][j];
            let _ = write!(
                s,
                r#"<rect x="{}" y="{y}" width="{cell_w}" height="{cell_h}" fill="{}"><title>{} / patch {i}: {}</title></rect>"#,
                label_w + i as u32 * cell_w,
                colormap::hex(colormap::diverging(v, scale)),
                escape(tok),
                num(v)
            );
        }
    }
    // Ticks at the start of every grid row.
    let cols = record.grid.cols.max(1);
    let every = record.grid.rows.div_ceil(12).max(1);
    for r in (0..record.grid.rows).step_by(every) {
        let x = label_w + (r * cols) as u32 * cell_w;
        let _ = write!(
            s,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#444"/><text x="{x}" y="{}">r{r}</text>"##,
            top + grid_h,
            top + grid_h + 5,
            top + grid_h + 17
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{label_w}" y="{top}" width="{grid_w}" height="{grid_h}" fill="none" stroke="#888"/><rect x="{cb_x}" y="{top}" width="16" height="{cb_h}" fill="url(#cbv)" stroke="#888"/><text x="{}" y="{}">{}</text><text x="{}" y="{}">0</text><text x="{}" y="{}">{}</text></svg>"##,
        cb_x + 20,
        top + 10,
        escape(&num(scale)),
        cb_x + 20,
        top + cb_h / 2 + 4,
        cb_x + 20,
        top + cb_h,
        escape(&num(-scale)),
    );
    s
}

/// A histogram: `edges` has one more entry than `counts`.
pub fn histogram_svg(counts: &[usize], edges: &[f64], title: &str, xlabel: &str) -> String {
    let (w, h) = (520u32, 240u32);
    let (l, r, t, b) = (44u32, 12u32, 26u32, 44u32);
    let pw = w - l - r;
    let ph = h - t - b;
    let maxc = counts.iter().copied().max().unwrap_or(0).max(1);
    let nb = counts.len().max(1) as u32;
    let bw = pw as f64 / nb as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" {FONT}><text x="{l}" y="16">{}</text>"#,
        escape(title)
    );
    for (k, &c) in counts.iter().enumerate() {
        let bh = ph as f64 * c as f64 / maxc as f64;
        let x = l as f64 + k as f64 * bw;
        let lo = edges.get(k).copied().unwrap_or(0.0);
        let hi = edges.get(k + 1).copied().unwrap_or(0.0);
        let _ = write!(
            s,
            r##"<rect x="{x:.2}" y="{:.2}" width="{:.2}" height="{bh:.2}" fill="#4a78b0"><title>[{}, {}): {c}</title></rect>"##,
            (t + ph) as f64 - bh,
            (bw - 1.0).max(0.5),
            num(lo),
            num(hi)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{l}" y1="{y}" x2="{}" y2="{y}" stroke="#333"/><line x1="{l}" y1="{t}" x2="{l}" y2="{y}" stroke="#333"/><text x="{}" y="{}" text-anchor="end">{maxc}</text><text x="{}" y="{y}" text-anchor="end">0</text>"##,
        l + pw,
        l - 4,
        t + 8,
        l - 4,
        y = t + ph
    );
    if let (Some(first), Some(last)) = (edges.first(), edges.last()) {
        let _ = write!(
            s,
            r#"<text x="{l}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            t + ph + 14,
            escape(&num(*first)),
            l + pw,
            t + ph + 14,
            escape(&num(*last))
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text></svg>"#,
        l + pw / 2,
        h - 8,
        escape(xlabel)
    );
    s
}

/// Horizontal bars, one per `(label, value)` (values >= 0).
pub fn bar_chart_svg(items: &[(String, f64)], title: &str) -> String {
    let row = 18u32;
    let label_w = 16
        + 7 * items
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(1)
            .min(30) as u32;
    let bar_max = 320u32;
    let w = label_w + bar_max + 70;
    let h = 30 + row * items.len().max(1) as u32 + 8;
    let maxv = items.iter().map(|(_, v)| *v).fold(0.0f64, f64::max);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" {FONT}><text x="4" y="16">{}</text>"#,
        escape(title)
    );
    for (k, (label, v)) in items.iter().enumerate() {
        let y = 26 + k as u32 * row;
        let bw = if maxv > 0.0 {
            bar_max as f64 * v / maxv
        } else {
            0.0
        };
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{label_w}" y="{y}" width="{bw:.2}" height="{}" fill="#c0504d"/><text x="{:.2}" y="{}">{}</text>"##,
            label_w - 6,
            y + row - 5,
            escape(label),
            row - 4,
            label_w as f64 + bw + 4.0,
            y + row - 5,
            escape(&num(*v))
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(-2.0), "-2");
        assert_eq!(num(1.23456), "1.2346");
        assert_eq!(num(1e-5), "1.00e-5");
    }

    #[test]
    fn histogram_has_one_bar_per_bin() {
        let s = histogram_svg(&[1, 0, 3], &[0.0, 1.0, 2.0, 3.0], "t <x>", "x");
        assert_eq!(s.matches("<rect").count(), 3);
        assert!(s.contains("t &lt;x&gt;"));
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
    }
}
