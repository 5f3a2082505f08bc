//! Float to integer conversions, named for what they do: the value is rounded toward zero and
//! saturates at the integer's bounds, NaN becomes 0 (what Rust's `as` does, said once here
//! instead of at every media computation). Callers round first when they mean rounding.

macro_rules! saturating {
    ($($name:ident -> $int:ty),+ $(,)?) => {$(
        /// `value` as the integer, saturating at its bounds; NaN is 0.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        pub(crate) fn $name(value: f64) -> $int {
            value as $int
        }
    )+};
}

saturating!(to_u32 -> u32, to_u64 -> u64, to_i32 -> i32, to_i64 -> i64, to_usize -> usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_saturate_and_map_nan_to_zero() {
        assert_eq!(to_u32(12.9), 12);
        assert_eq!(to_u32(-3.0), 0);
        assert_eq!(to_u32(f64::NAN), 0);
        assert_eq!(to_u64(f64::INFINITY), u64::MAX);
        assert_eq!(to_i64(-1e300), i64::MIN);
        assert_eq!(to_i32(1e12), i32::MAX);
        assert_eq!(to_usize(7.0), 7);
    }
}
