//! Version ranges (`0+`, `1-3`, `none`) and the Rust conditions that test a
//! `version: i16` against them, simplified against the versions a struct can
//! actually be encoded at (so no `version >= 0` reaches the output).

/// An inclusive range of versions; `lo > hi` is the empty range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First version.
    pub lo: i16,
    /// Last version (`i16::MAX` for an open range).
    pub hi: i16,
}

impl Range {
    /// The empty range.
    pub const NONE: Range = Range { lo: 1, hi: 0 };

    /// Parse `none`, `N`, `N+` or `A-B`.
    pub fn parse(s: &str) -> Result<Range, String> {
        let s = s.trim();
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|e| format!("bad version {s:?}: {e}"))
        };
        if s == "none" {
            Ok(Range::NONE)
        } else if let Some(lo) = s.strip_suffix('+') {
            Ok(Range {
                lo: num(lo)?,
                hi: i16::MAX,
            })
        } else if let Some((a, b)) = s.split_once('-') {
            Ok(Range {
                lo: num(a)?,
                hi: num(b)?,
            })
        } else {
            let v = num(s)?;
            Ok(Range { lo: v, hi: v })
        }
    }

    /// True when no version is in the range.
    pub fn is_empty(self) -> bool {
        self.lo > self.hi
    }

    /// The versions in both ranges.
    pub fn intersect(self, o: Range) -> Range {
        Range {
            lo: self.lo.max(o.lo),
            hi: self.hi.min(o.hi),
        }
    }

    /// The smallest range holding both.
    pub fn hull(self, o: Range) -> Range {
        if self.is_empty() {
            o
        } else if o.is_empty() {
            self
        } else {
            Range {
                lo: self.lo.min(o.lo),
                hi: self.hi.max(o.hi),
            }
        }
    }

    /// The condition "version is in `self`", knowing version is in `ctx`.
    pub fn cond(self, ctx: Range) -> Cond {
        let r = self.intersect(ctx);
        if r.is_empty() {
            Cond::Never
        } else if r == ctx {
            Cond::Always
        } else if r.lo <= ctx.lo {
            Cond::Expr(
                format!("version <= {}", r.hi),
                format!("version > {}", r.hi),
            )
        } else if r.hi >= ctx.hi {
            Cond::Expr(
                format!("version >= {}", r.lo),
                format!("version < {}", r.lo),
            )
        } else {
            Cond::Expr(
                format!("({}..={}).contains(&version)", r.lo, r.hi),
                format!("!({}..={}).contains(&version)", r.lo, r.hi),
            )
        }
    }

    /// Human-readable form for documentation.
    pub fn describe(self) -> String {
        if self.is_empty() {
            "none".into()
        } else if self.hi == i16::MAX {
            format!("{}+", self.lo)
        } else if self.lo == self.hi {
            format!("{}", self.lo)
        } else {
            format!("{}-{}", self.lo, self.hi)
        }
    }
}

/// A condition on `version`, already simplified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// True at every version the code can see.
    Always,
    /// False at every version the code can see.
    Never,
    /// An expression and its negation.
    Expr(String, String),
}

impl Cond {
    /// The condition as a Rust boolean expression.
    pub fn expr(&self) -> String {
        match self {
            Cond::Always => "true".into(),
            Cond::Never => "false".into(),
            Cond::Expr(e, _) => e.clone(),
        }
    }

    /// The negated condition as a Rust boolean expression.
    pub fn not_expr(&self) -> String {
        match self {
            Cond::Always => "false".into(),
            Cond::Never => "true".into(),
            Cond::Expr(_, n) => n.clone(),
        }
    }

    /// Wrap `code` so it only runs when the condition holds.
    pub fn guard(&self, code: &str) -> String {
        match self {
            Cond::Always => format!("{code}\n"),
            Cond::Never => String::new(),
            Cond::Expr(e, _) => format!("if {e} {{\n{code}\n}}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_simplify() {
        let ctx = Range::parse("0-5").unwrap();
        assert_eq!(Range::parse("0+").unwrap().cond(ctx), Cond::Always);
        assert_eq!(Range::parse("none").unwrap().cond(ctx), Cond::Never);
        assert_eq!(Range::parse("3+").unwrap().cond(ctx).expr(), "version >= 3");
        assert_eq!(
            Range::parse("0-2").unwrap().cond(ctx).not_expr(),
            "version > 2"
        );
        assert_eq!(
            Range::parse("2-3").unwrap().cond(ctx).expr(),
            "(2..=3).contains(&version)"
        );
        assert_eq!(Range::parse("7").unwrap().cond(ctx), Cond::Never);
    }
}
