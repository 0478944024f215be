//! Points in time and durations as operators type them: RFC 3339 / ISO 8601
//! date-times (`2026-12-03T10:15:00Z`, `2026-12-03T10:15:00.250+01:00`,
//! `2026-12-03T10:15:00`, the last read as UTC) or milliseconds since the
//! epoch; durations as `30s`, `5m`, `1h30m`, `2d`, `250ms`, or ISO 8601's
//! `PT1H30M` / `P1DT2H` (what `kafka-consumer-groups.sh --by-duration`
//! takes).

use std::time::Duration;

/// Milliseconds since the epoch of `s`.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = |why: &str| {
        format!(
            "bad date-time `{s}`: {why} (expected e.g. 2026-12-03T10:15:00Z, \
             2026-12-03T10:15:00.250+01:00, or milliseconds since the epoch)"
        )
    };
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| bad("too large"));
    }
    let (date, rest) = t.split_once(['T', 't', ' ']).ok_or_else(|| bad("no `T`"))?;
    let mut d = date.splitn(3, '-');
    let mut field = |what: &str, lo: i64, hi: i64| -> Result<i64, String> {
        let v: i64 = d
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| bad(&format!("no {what}")))?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(bad(&format!("{what} {v} out of range")))
        }
    };
    let (year, month, day) = (
        field("year", 1970, 9999)?,
        field("month", 1, 12)?,
        field("day", 1, 31)?,
    );
    // The zone: `Z`, `+HH:MM`, `-HHMM`, or none (UTC).
    let (clock, offset_min) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 {
            return Err(bad("zone offset is not ±HH:MM"));
        }
        let h: i64 = digits[..2].parse().map_err(|_| bad("zone hours"))?;
        let m: i64 = digits[2..].parse().map_err(|_| bad("zone minutes"))?;
        (c, sign * (h * 60 + m))
    } else {
        (rest, 0)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = hms.split(':');
    let mut part = |what: &str, hi: i64, required: bool| -> Result<i64, String> {
        match c.next() {
            None if !required => Ok(0),
            None => Err(bad(&format!("no {what}"))),
            Some(x) => match x.parse::<i64>() {
                Ok(v) if (0..=hi).contains(&v) && x.len() == 2 => Ok(v),
                _ => Err(bad(&format!("bad {what} `{x}`"))),
            },
        }
    };
    let (h, m, sec) = (
        part("hour", 23, true)?,
        part("minute", 59, true)?,
        part("second", 60, false)?,
    );
    if c.next().is_some() {
        return Err(bad("too many `:`"));
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("bad fraction of a second"));
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap_or(0);
    let days = days_from_civil(year, month, day);
    Ok((((days * 24 + h) * 60 + m - offset_min) * 60 + sec) * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A duration: `250ms`, `30s`, `5m`, `1h30m`, `2d`, or ISO 8601's
/// `PT1H30M`, `P1DT2H`, `PT0.5S`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad =
        || format!("bad duration `{s}` (expected e.g. 30s, 5m, 1h30m, 2d, 250ms, or PT1H30M)");
    let iso = t.strip_prefix(['P', 'p']);
    let body = iso.map_or(t, |b| b);
    let mut total = 0.0_f64;
    let mut number = String::new();
    let mut in_time = iso.is_none();
    let mut any = false;
    let mut chars = body.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch.is_ascii_digit() || ch == '.' {
            number.push(ch);
            continue;
        }
        if iso.is_some() && (ch == 'T' || ch == 't') && number.is_empty() {
            in_time = true;
            continue;
        }
        let unit = match ch.to_ascii_lowercase() {
            'm' if iso.is_none() && chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'd' => 86_400.0,
            'h' if in_time => 3_600.0,
            'm' if in_time => 60.0,
            's' if in_time => 1.0,
            _ => return Err(bad()),
        };
        let n: f64 = number.parse().map_err(|_| bad())?;
        total += n * unit;
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any || !total.is_finite() || total > 1e12 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_in_utc_with_zones_and_as_epoch_millis() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_datetime("2026-12-03T10:15:00Z"),
            Ok(1_796_292_900_000)
        );
        assert_eq!(
            parse_datetime("2026-12-03T10:15:00"),
            parse_datetime("2026-12-03T10:15:00Z")
        );
        assert_eq!(
            parse_datetime("2026-12-03T11:15:00.250+01:00"),
            Ok(1_796_292_900_250)
        );
        assert_eq!(
            parse_datetime("2026-12-03T05:15:00-0500"),
            Ok(1_796_292_900_000)
        );
        assert_eq!(
            parse_datetime("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000)
        );
        assert_eq!(parse_datetime("1796292900000"), Ok(1_796_292_900_000));
        assert_eq!(parse_datetime("2026-12-03T10:15Z"), Ok(1_796_292_900_000));
    }

    #[test]
    fn bad_date_times_say_what_is_wrong() {
        for s in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-12-03T25:00:00Z",
            "2026-12-03",
        ] {
            let e = parse_datetime(s).expect_err(s);
            assert!(e.contains(s), "{e}");
        }
    }

    #[test]
    fn durations_short_and_iso() {
        let d = |s| parse_duration(s).expect(s);
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("5m"), Duration::from_secs(300));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("2d"), Duration::from_secs(172_800));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("PT1H30M"), Duration::from_secs(5400));
        assert_eq!(d("P1DT2H"), Duration::from_secs(93_600));
        assert_eq!(d("PT0.5S"), Duration::from_millis(500));
        for s in ["", "5", "abc", "P1H", "1x", "PT"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
