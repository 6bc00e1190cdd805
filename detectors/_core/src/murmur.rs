//! Kafka's default partitioner: murmur2 of the key's UTF-8 bytes.

/// Kafka's murmur2 hash (the Java client's), as a signed 32-bit value.
pub fn murmur2(data: &[u8]) -> i32 {
    let m: u32 = 0x5BD1_E995;
    let len = data.len();
    let mut h: u32 = 0x9747_B28C ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> 24;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a string key.
pub fn kafka_partition(key: &str, partitions: u32) -> u32 {
    ((murmur2(key.as_bytes()) as u32) & 0x7FFF_FFFF) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_client_values() {
        // reference values of the Java client's Utils.murmur2
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b""), 275646681);
        assert_eq!(murmur2(b"abc"), 479470107);
        assert!(kafka_partition("1900000042", 6) < 6);
    }
}
