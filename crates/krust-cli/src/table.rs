//! Aligned text tables for people (`--json` is for machines), and the
//! humane forms of durations the tables print.

use std::fmt::Write as _;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table: a header and rows, each cell already text.
#[derive(Debug)]
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Add a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Write [`Table::render`] to `out`.
    pub fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(self.render().as_bytes())
    }

    /// The header and the rows, columns two spaces apart, each line ending
    /// in a newline and without trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| h.len()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|(h, _)| (*h).to_owned()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, ((_, align), cell)) in self.columns.iter().zip(cells).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i] - cell.chars().count();
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// Broker ids as `1,2,3`; `-` for none.
pub fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// A lag in time as people read it: `0s`, `42s`, `3m05s`, `2h07m`,
/// `3d04h`; `?` when unknown.
pub fn ago(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "?".to_owned();
    };
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_numbers_align_right() {
        let mut t = Table::new(&[("TOPIC", Align::Left), ("LAG", Align::Right)]);
        t.row(vec!["events".into(), "5".into()]);
        t.row(vec!["e".into(), "12345".into()]);
        assert_eq!(t.render(), "TOPIC     LAG\nevents      5\ne       12345\n");
    }

    #[test]
    fn id_lists() {
        assert_eq!(ids(&[1, 2, 3]), "1,2,3");
        assert_eq!(ids(&[]), "-");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(ago(Some(0)), "0s");
        assert_eq!(ago(Some(42_999)), "42s");
        assert_eq!(ago(Some(185_000)), "3m05s");
        assert_eq!(ago(Some(7_620_000)), "2h07m");
        assert_eq!(ago(Some(273_600_000)), "3d04h");
        assert_eq!(ago(None), "?");
        assert_eq!(ago(Some(-5)), "0s");
    }
}
