//! `occurred_at` on the wire: RFC 3339, UTC, milliseconds.

/// Serde adapter: writes `2026-11-23T10:00:00.123Z`, reads any RFC 3339 timestamp.
pub(crate) mod rfc3339_millis {
    use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// The length of `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    const LEN: usize = 24;

    pub(crate) fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let buf = write(time);
        match buf.as_ref().and_then(|b| std::str::from_utf8(b).ok()) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_str(&chrono_format(time)),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse(&text).map_err(D::Error::custom)
    }

    pub(crate) fn format(time: &DateTime<Utc>) -> String {
        let buf = write(time);
        match buf.as_ref().and_then(|b| std::str::from_utf8(b).ok()) {
            Some(text) => text.to_owned(),
            None => chrono_format(time),
        }
    }

    pub(crate) fn parse(text: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp: {e}"))
    }

    /// What chrono writes; the reference for [`write`].
    fn chrono_format(time: &DateTime<Utc>) -> String {
        time.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// The text of [`chrono_format`] on the stack, without formatting machinery: the hot
    /// path of every `to_json`. `None` for a year outside 0..=9999, which chrono writes with
    /// a sign and more digits.
    fn write(time: &DateTime<Utc>) -> Option<[u8; LEN]> {
        // Each accessor of `DateTime` converts to local time first: read the UTC fields once.
        let time = time.naive_utc();
        let year = u32::try_from(time.year()).ok().filter(|y| *y <= 9999)?;
        let (mut second, mut nano) = (time.second(), time.nanosecond());
        if nano >= 1_000_000_000 {
            // A leap second: chrono writes it as second 60.
            second += 1;
            nano -= 1_000_000_000;
        }
        let millis = nano / 1_000_000;
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        put_two(&mut buf[0..2], year / 100);
        put_two(&mut buf[2..4], year % 100);
        put_two(&mut buf[5..7], time.month());
        put_two(&mut buf[8..10], time.day());
        put_two(&mut buf[11..13], time.hour());
        put_two(&mut buf[14..16], time.minute());
        put_two(&mut buf[17..19], second);
        put_digit(&mut buf[20], millis / 100);
        put_two(&mut buf[21..23], millis % 100);
        Some(buf)
    }

    /// Writes `n`, below 100, as two digits.
    fn put_two(out: &mut [u8], n: u32) {
        put_digit(&mut out[0], n / 10);
        put_digit(&mut out[1], n % 10);
    }

    /// Writes the last decimal digit of `n`.
    fn put_digit(out: &mut u8, n: u32) {
        *out = b"0123456789"[(n % 10) as usize];
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use chrono::{NaiveDate, TimeZone};

        fn same_as_chrono(time: &DateTime<Utc>) {
            assert_eq!(format(time), chrono_format(time), "{time:?}");
            let mut out = Vec::new();
            serialize(time, &mut serde_json::Serializer::new(&mut out)).unwrap();
            assert_eq!(out, format!("\"{}\"", chrono_format(time)).into_bytes());
        }

        #[test]
        fn writes_what_chrono_writes() {
            let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
            let (min, max) = (
                Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0)
                    .unwrap()
                    .timestamp_millis(),
                Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
                    .unwrap()
                    .timestamp_millis()
                    + 999,
            );
            let span = u64::try_from(max - min).unwrap();
            for _ in 0..20_000 {
                // xorshift: a spread of instants over the whole four-digit range.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let millis = min + i64::try_from(state % span).unwrap();
                let time = DateTime::from_timestamp_millis(millis).unwrap();
                same_as_chrono(&time);
                // Sub-millisecond digits are cut, not rounded.
                same_as_chrono(&(time + chrono::Duration::nanoseconds(999_999)));
            }
            for time in [
                DateTime::from_timestamp_millis(min).unwrap(),
                DateTime::from_timestamp_millis(max).unwrap(),
                DateTime::UNIX_EPOCH,
                Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
                Utc::now(),
            ] {
                same_as_chrono(&time);
            }
        }

        #[test]
        fn writes_leap_seconds_and_signed_years_as_chrono_does() {
            let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_milli_opt(23, 59, 59, 1_234)
                .unwrap()
                .and_utc();
            same_as_chrono(&leap);
            assert_eq!(format(&leap), "2016-12-31T23:59:60.234Z");
            for year in [-1, 10_000, 262_000] {
                let time = Utc.with_ymd_and_hms(year, 6, 1, 12, 30, 0).unwrap();
                assert!(write(&time).is_none());
                same_as_chrono(&time);
            }
        }
    }
}
