//! Exact signed sums and the balance fold.

use std::fmt;

use super::error::{Error, ValidationError};
use super::values::{Amount, Currency, EventType, Timestamp};

const ATTO_PER_UNIT: u64 = 1_000_000_000_000_000_000;

/// An exact signed decimal with up to 18 fractional digits and magnitude
/// below about 1.7 x 10^38: room for 10^10 events of the largest amount.
///
/// The value is `units + atto / 10^18`, with `0 <= atto < 10^18` (so `units`
/// is the floor). Arithmetic is checked: an overflow is an error, never a
/// wrong number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Money {
    units: i128,
    atto: u64,
}

/// A sum left the range [`Money`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl Money {
    pub const ZERO: Money = Money { units: 0, atto: 0 };

    pub fn from_amount(amount: &Amount) -> Money {
        let (mantissa, scale) = amount.mantissa_scale();
        // scale <= 18 and mantissa < 10^28 by Amount's invariant.
        let pow = 10u128.pow(scale);
        let units = (mantissa / pow) as i128;
        let frac = (mantissa % pow) as u64;
        let atto = frac * 10u64.pow(18 - scale);
        Money { units, atto }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, Overflow> {
        let mut atto = self.atto + other.atto; // both < 10^18: no u64 overflow
        let mut carry = 0;
        if atto >= ATTO_PER_UNIT {
            atto -= ATTO_PER_UNIT;
            carry = 1;
        }
        let units = self
            .units
            .checked_add(other.units)
            .and_then(|u| u.checked_add(carry))
            .ok_or(Overflow)?;
        Ok(Money { units, atto })
    }

    pub fn checked_neg(self) -> Result<Money, Overflow> {
        if self.atto == 0 {
            let units = self.units.checked_neg().ok_or(Overflow)?;
            Ok(Money { units, atto: 0 })
        } else {
            // -(u + a) = (-u - 1) + (1 - a)
            let units = self
                .units
                .checked_neg()
                .and_then(|u| u.checked_sub(1))
                .ok_or(Overflow)?;
            Ok(Money {
                units,
                atto: ATTO_PER_UNIT - self.atto,
            })
        }
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, Overflow> {
        self.checked_add(other.checked_neg()?)
    }

    pub fn is_negative(&self) -> bool {
        self.units < 0
    }

    pub fn is_zero(&self) -> bool {
        self.units == 0 && self.atto == 0
    }

    /// Parses what [`Display`](fmt::Display) writes: `-12.34`, `0`, `7.000001`.
    pub fn parse(text: &str) -> Option<Money> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 18
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let units: i128 = int.parse().ok()?;
        let atto: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse::<u64>().ok()? * 10u64.pow(18 - frac.len() as u32)
        };
        let positive = Money { units, atto };
        if negative {
            positive.checked_neg().ok()
        } else {
            Some(positive)
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (negative, magnitude) = if self.units < 0 {
            match self.checked_neg() {
                Ok(m) => (true, m),
                // Only i128::MIN with atto 0 cannot be negated; print it directly.
                Err(Overflow) => return write!(f, "{}", self.units),
            }
        } else {
            (false, *self)
        };
        if negative {
            f.write_str("-")?;
        }
        write!(f, "{}", magnitude.units)?;
        if magnitude.atto != 0 {
            let frac = format!("{:018}", magnitude.atto);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

/// Running totals of one wallet in one currency, over some set of events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    pub available: Money,
    pub held: Money,
    pub event_count: u64,
    pub last_occurred_at: Option<Timestamp>,
}

/// Refused rather than rounded: a balance beyond 10^38 cannot be held exactly.
fn overflow() -> Error {
    Error::Validation(ValidationError::new(
        "amount",
        "would take the wallet's balance beyond 10^38, which cannot be held exactly",
    ))
}

impl Totals {
    /// These totals with one more event folded in, by the balance table
    /// (`docs/events.md`). `self` is left as it was when the sum overflows.
    pub fn applied(
        &self,
        event_type: EventType,
        amount: &Amount,
        occurred_at: Timestamp,
    ) -> Result<Totals, Error> {
        let m = Money::from_amount(amount);
        let add = |x: Money| x.checked_add(m).map_err(|_| overflow());
        let sub = |x: Money| x.checked_sub(m).map_err(|_| overflow());
        let (available, held) = match event_type {
            EventType::Deposit | EventType::TransferIn | EventType::Refund => {
                (add(self.available)?, self.held)
            }
            EventType::Withdrawal | EventType::TransferOut | EventType::Fee => {
                (sub(self.available)?, self.held)
            }
            EventType::Hold => (sub(self.available)?, add(self.held)?),
            EventType::Release => (add(self.available)?, sub(self.held)?),
        };
        Ok(Totals {
            available,
            held,
            event_count: self.event_count + 1,
            last_occurred_at: self.last_occurred_at.max(Some(occurred_at)),
        })
    }

    /// Folds one event in (see [`applied`](Self::applied)); all or nothing.
    pub fn apply(
        &mut self,
        event_type: EventType,
        amount: &Amount,
        occurred_at: Timestamp,
    ) -> Result<(), Error> {
        *self = self.applied(event_type, amount, occurred_at)?;
        Ok(())
    }

    /// Adds another set of totals (of disjoint events) to this one; all or nothing.
    pub fn merge(&mut self, other: &Totals) -> Result<(), Error> {
        let available = self
            .available
            .checked_add(other.available)
            .map_err(|_| overflow())?;
        let held = self.held.checked_add(other.held).map_err(|_| overflow())?;
        *self = Totals {
            available,
            held,
            event_count: self.event_count + other.event_count,
            last_occurred_at: self.last_occurred_at.max(other.last_occurred_at),
        };
        Ok(())
    }
}

/// One currency's balance of a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub currency: Currency,
    pub available: Money,
    pub held: Money,
    /// `available + held`.
    pub total: Money,
    pub event_count: u64,
    pub last_occurred_at: Option<Timestamp>,
}

impl Balance {
    pub fn from_totals(currency: Currency, totals: &Totals) -> Result<Balance, Error> {
        Ok(Balance {
            currency,
            available: totals.available,
            held: totals.held,
            total: totals
                .available
                .checked_add(totals.held)
                .map_err(|_| overflow())?,
            event_count: totals.event_count,
            last_occurred_at: totals.last_occurred_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn money_round_trips_and_adds_exactly() {
        for s in [
            "0",
            "1",
            "-1",
            "12.34",
            "-12.34",
            "0.000000000000000001",
            "-0.5",
        ] {
            assert_eq!(m(s).to_string(), s);
        }
        assert_eq!(m("0.1").checked_add(m("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(m("1").checked_sub(m("1.5")).unwrap().to_string(), "-0.5");
        assert_eq!(m("-0.5").checked_add(m("0.5")).unwrap(), Money::ZERO);
        let big = Money {
            units: i128::MAX,
            atto: 0,
        };
        assert_eq!(big.checked_add(m("1")), Err(Overflow));
        assert_eq!(Money::parse("1.2.3"), None);
        assert_eq!(Money::parse("abc"), None);
    }
}
