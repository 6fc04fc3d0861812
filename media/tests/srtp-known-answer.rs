//! SRTP against fixed vectors: RFC 3711 Appendix B.2 (AES-CM keystream, through the crypto
//! provider our SRTP contexts use) and libsrtp's published known-answer packets (the RFC 3711
//! B.3 master key: `srtp_validate()` in libsrtp's test/srtp_driver.c), which exercise key
//! derivation, AES-CM and HMAC-SHA1 of the real contexts end to end; plus replay rejection.

use tincan_media::srtp::{CryptoAttribute, CryptoSuite, SrtpSession};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector is hex"))
        .collect()
}

/// RFC 3711 B.3 master key and salt.
fn b3_attribute(suite: CryptoSuite) -> CryptoAttribute {
    let mut material = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    material.extend(hex("0EC675AD498AFEEBB6960B3AABE6"));
    CryptoAttribute::generate(1, suite, |buf| buf.copy_from_slice(&material))
}

const RTP_PLAINTEXT: &str = "800f1234decafbadcafebabe abababababababababababababababab";
const SRTP_80: &str =
    "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb";
const SRTP_32: &str = "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc";
const RTCP_PLAINTEXT: &str = "81c8000bcafebabe abababababababababababababababab";
const SRTCP_80: &str =
    "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798";

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    use rtc_crypto::StreamCipherAlgorithm;
    let provider = rtc_crypto::default_provider().expect("ring provider is enabled");
    let mut cipher = provider
        .crypto()
        .new_stream_cipher(
            StreamCipherAlgorithm::Aes128Ctr,
            &hex("2B7E151628AED2A6ABF7158809CF4F3C"),
        )
        .expect("aes-128-ctr is supported");
    let mut keystream = vec![0u8; 48];
    cipher
        .apply_keystream(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"), &mut keystream)
        .expect("keystream");
    assert_eq!(
        keystream,
        hex(
            "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0"
        )
    );
}

#[test]
fn libsrtp_known_answer_sha1_80() {
    let key = b3_attribute(CryptoSuite::AesCm128HmacSha1_80);
    let mut sender = SrtpSession::new(&key, &key).expect("keys valid");
    let mut receiver = SrtpSession::new(&key, &key).expect("keys valid");
    let protected = sender.protect_rtp(&hex(RTP_PLAINTEXT)).expect("protect");
    assert_eq!(protected, hex(SRTP_80));
    assert_eq!(
        receiver.unprotect_rtp(&protected).expect("authentic"),
        hex(RTP_PLAINTEXT)
    );
}

#[test]
fn libsrtp_known_answer_sha1_32() {
    let key = b3_attribute(CryptoSuite::AesCm128HmacSha1_32);
    let mut sender = SrtpSession::new(&key, &key).expect("keys valid");
    let protected = sender.protect_rtp(&hex(RTP_PLAINTEXT)).expect("protect");
    assert_eq!(protected, hex(SRTP_32));
}

#[test]
fn libsrtp_known_answer_srtcp() {
    let key = b3_attribute(CryptoSuite::AesCm128HmacSha1_80);
    let mut sender = SrtpSession::new(&key, &key).expect("keys valid");
    let mut receiver = SrtpSession::new(&key, &key).expect("keys valid");
    let protected = sender.protect_rtcp(&hex(RTCP_PLAINTEXT)).expect("protect");
    assert_eq!(protected, hex(SRTCP_80));
    assert_eq!(
        receiver.unprotect_rtcp(&protected).expect("authentic"),
        hex(RTCP_PLAINTEXT)
    );
    assert!(
        receiver.unprotect_rtcp(&protected).is_err(),
        "srtcp replay accepted"
    );
}

#[test]
fn replayed_and_tampered_packets_are_rejected() {
    let key = b3_attribute(CryptoSuite::AesCm128HmacSha1_80);
    let mut sender = SrtpSession::new(&key, &key).expect("keys valid");
    let mut receiver = SrtpSession::new(&key, &key).expect("keys valid");
    let mut packets = Vec::new();
    for seq in 0u16..5 {
        let mut rtp = hex(RTP_PLAINTEXT);
        rtp[2..4].copy_from_slice(&(0x1234 + seq).to_be_bytes());
        packets.push(sender.protect_rtp(&rtp).expect("protect"));
    }
    // Out of order within the window is fine.
    for i in [0, 2, 1, 4, 3] {
        receiver.unprotect_rtp(&packets[i]).expect("fresh packet");
    }
    // Every one of them again is a replay.
    for p in &packets {
        assert!(receiver.unprotect_rtp(p).is_err());
    }
    // A flipped payload bit fails authentication.
    let mut rtp = hex(RTP_PLAINTEXT);
    rtp[2..4].copy_from_slice(&0x1300u16.to_be_bytes());
    let mut forged = sender.protect_rtp(&rtp).expect("protect");
    forged[14] ^= 1;
    assert!(receiver.unprotect_rtp(&forged).is_err());
    // Wrong key: nothing authenticates.
    let other = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| b.fill(1));
    let mut stranger = SrtpSession::new(&other, &other).expect("keys valid");
    assert!(stranger.unprotect_rtp(&packets[0]).is_err());
}
