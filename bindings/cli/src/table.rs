//! Plain aligned tables for people; scripts use `--json`.

/// Prints `rows` under `header`, each column as wide as its widest cell.
/// Columns named in `right` are right-aligned (amounts, counts).
pub fn print(header: &[&str], rows: &[Vec<String>], right: &[&str]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(header)
            .map(|((cell, &w), h)| {
                if right.contains(h) {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
