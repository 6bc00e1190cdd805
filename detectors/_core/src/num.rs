//! Float arithmetic with Python's exact semantics, so the core's features equal
//! the ones the Python engine computed bit for bit: floor division, `math.fsum`,
//! `statistics.fmean`, `statistics.median` and `statistics.pstdev` (the exact
//! variance, then a correctly rounded square root).

use num_bigint::BigInt;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Python's `a // b` for floats (`float_floor_div` in CPython).
pub fn floordiv(a: f64, b: f64) -> f64 {
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let mut fd = div.floor();
        if div - fd > 0.5 {
            fd += 1.0;
        }
        fd
    } else {
        0.0_f64.copysign(a / b)
    }
}

/// `math.fsum`: the correctly rounded sum (Shewchuk's partials, CPython's rounding).
pub fn fsum<I: IntoIterator<Item = f64>>(xs: I) -> f64 {
    let mut p: Vec<f64> = Vec::new();
    for mut x in xs {
        let mut i = 0;
        for j in 0..p.len() {
            let mut y = p[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                p[i] = lo;
                i += 1;
            }
            x = hi;
        }
        p.truncate(i);
        p.push(x);
    }
    let mut n = p.len();
    if n == 0 {
        return 0.0;
    }
    n -= 1;
    let mut hi = p[n];
    let mut lo = 0.0;
    while n > 0 {
        let x = hi;
        n -= 1;
        let y = p[n];
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        let yr = x - hi;
        if y == yr {
            hi = x;
        }
    }
    hi
}

/// `statistics.fmean`.
pub fn fmean(xs: &[f64]) -> f64 {
    fsum(xs.iter().copied()) / xs.len() as f64
}

/// `statistics.median` (the mean of the two middle values for an even count).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// A finite float as `mantissa * 2**exponent` with an integer mantissa.
fn exact(x: f64) -> (i64, i32) {
    if x == 0.0 {
        return (0, 0);
    }
    let bits = x.to_bits();
    let sign = if bits >> 63 == 1 { -1 } else { 1 };
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = (bits & ((1u64 << 52) - 1)) as i64;
    if exp == 0 {
        (sign * frac, -1074)
    } else {
        (sign * (frac | (1i64 << 52)), exp - 1075)
    }
}

/// Square root of `n/m` rounded to an integer with round-to-odd.
fn isqrt_frac_rto(n: &BigInt, m: &BigInt) -> BigInt {
    let a = (n / m).sqrt();
    if &(&a * &a * m) != n {
        a | BigInt::one()
    } else {
        a
    }
}

/// `statistics._float_sqrt_of_frac`: `sqrt(n/m)` correctly rounded.
fn float_sqrt_of_frac(n: &BigInt, m: &BigInt) -> f64 {
    let q = (n.bits() as i64 - m.bits() as i64 - 109).div_euclid(2);
    if q >= 0 {
        let num = isqrt_frac_rto(n, &(m << (2 * q as usize))) << q as usize;
        num.to_f64().unwrap_or(f64::INFINITY)
    } else {
        let num = isqrt_frac_rto(&(n << (-2 * q) as usize), m);
        // num has at most 56 bits: the cast rounds once, the scaling is exact
        let v = num.to_u64().expect("square root fits 64 bits") as f64;
        v * 2f64.powi(q as i32)
    }
}

/// `statistics.pstdev`: the exact population variance, correctly rounded root.
pub fn pstdev(xs: &[f64]) -> f64 {
    let n = xs.len();
    assert!(n > 0, "pstdev requires at least one data point");
    // each value as k * 2**e0 with integer k: trailing zero bits stripped, so
    // the usual data (time differences) give small integers
    let parts: Vec<(i64, i32)> = xs
        .iter()
        .map(|&x| {
            let (m, e) = exact(x);
            if m == 0 {
                (0, e)
            } else {
                let tz = m.trailing_zeros();
                (m >> tz, e + tz as i32)
            }
        })
        .collect();
    let e0 = parts
        .iter()
        .filter(|p| p.0 != 0)
        .map(|p| p.1)
        .min()
        .unwrap_or(0);
    let c = BigInt::from(n as u64);
    let (sx, sxx) = match small_sums(&parts, e0) {
        Some((sx, sxx)) => (BigInt::from(sx), BigInt::from(sxx)),
        None => {
            let mut sx = BigInt::zero();
            let mut sxx = BigInt::zero();
            for &(m, e) in &parts {
                let k = BigInt::from(m) << ((e - e0) as usize);
                sxx += &k * &k;
                sx += k;
            }
            (sx, sxx)
        }
    };
    // variance = (n*sxx - sx^2) / n^2, in units of 2**(2*e0)
    let mut num = &c * &sxx - &sx * &sx;
    let mut den = &c * &c;
    if num.is_zero() {
        return 0.0;
    }
    if e0 >= 0 {
        num <<= (2 * e0) as usize;
    } else {
        den <<= (-2 * e0) as usize;
    }
    debug_assert!(!num.is_negative());
    float_sqrt_of_frac(&num, &den)
}

/// The sums of `k` and `k*k` in 128-bit integers, `None` when they overflow.
fn small_sums(parts: &[(i64, i32)], e0: i32) -> Option<(i128, i128)> {
    let (mut sx, mut sxx) = (0i128, 0i128);
    for &(m, e) in parts {
        let shift = u32::try_from(e - e0).ok()?;
        if shift >= 64 {
            return None;
        }
        let k = (m as i128).checked_shl(shift)?;
        if k.unsigned_abs() >= 1u128 << 62 {
            return None;
        }
        sxx = sxx.checked_add(k * k)?;
        sx = sx.checked_add(k)?;
    }
    Some((sx, sxx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_division_matches_python() {
        assert_eq!(floordiv(7.0, 2.0), 3.0);
        assert_eq!(floordiv(-7.0, 2.0), -4.0);
        assert_eq!(floordiv(-1e18, 300.0), -3333333333333334.0);
        assert_eq!(floordiv(1764547205.0, 300.0), 5881824.0);
    }

    #[test]
    fn fsum_is_exact() {
        assert_eq!(fsum([0.1; 10]), 1.0);
        assert_eq!(
            fsum([1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50]),
            1e-100
        );
        assert_eq!(fsum([]), 0.0);
    }

    #[test]
    fn pstdev_matches_python() {
        // values printed by Python 3.11's statistics.pstdev
        assert_eq!(
            pstdev(&[1.5, 2.5, 2.5, 2.75, 3.25, 4.75]),
            0.986893273527251
        );
        assert_eq!(pstdev(&[5.0, 5.0, 5.0]), 0.0);
        assert_eq!(pstdev(&[0.1, 0.2, 0.4]), 0.12472191289246472);
        // values far apart in magnitude take the big-integer path
        assert_eq!(pstdev(&[1e-300, 1e300]), 5e299);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
