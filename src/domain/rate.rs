//! A rate limit written as `N/period`, e.g. `100/min` or `1000/day`.

use std::{fmt, str::FromStr, time::Duration};

/// `limit` requests per `period`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per period (at least 1).
    pub limit: u32,
    /// Length of the period.
    pub period: Duration,
}

impl FromStr for Rate {
    type Err = String;

    /// Accepts `N/s`, `N/sec`, `N/second`, `N/m`, `N/min`, `N/minute`, `N/h`, `N/hour`, `N/d`,
    /// `N/day`, optionally with a multiplier such as `N/10min`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || format!("invalid rate {s:?}: expected e.g. 100/min, 5/hour or 1000/day");
        let (n, period) = s.trim().split_once('/').ok_or_else(err)?;
        let limit: u32 = n.trim().parse().map_err(|_| err())?;
        if limit == 0 {
            return Err(err());
        }
        let period = period.trim();
        let digits = period.chars().take_while(char::is_ascii_digit).count();
        let count: u64 = if digits == 0 {
            1
        } else {
            period[..digits].parse().map_err(|_| err())?
        };
        let unit = match &period[digits..] {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(err()),
        };
        if count == 0 {
            return Err(err());
        }
        Ok(Self {
            limit,
            period: Duration::from_secs(count * unit),
        })
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.limit, self.period.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("100/min", 100, 60)]
    #[case("1000/day", 1000, 86_400)]
    #[case("5/hour", 5, 3600)]
    #[case("3/10s", 3, 10)]
    #[case(" 7 / sec ", 7, 1)]
    fn rates_parse(#[case] raw: &str, #[case] limit: u32, #[case] secs: u64) {
        let rate: Rate = raw.parse().expect("valid");
        assert_eq!((rate.limit, rate.period.as_secs()), (limit, secs));
    }

    #[rstest]
    #[case("")]
    #[case("100")]
    #[case("0/min")]
    #[case("-1/min")]
    #[case("10/fortnight")]
    #[case("10/0min")]
    fn bad_rates_are_rejected(#[case] raw: &str) {
        assert!(raw.parse::<Rate>().is_err());
    }
}
