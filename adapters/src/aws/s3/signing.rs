//! Signature Version 4 as S3 wants it, computed by the SDK's own signer (`aws-sigv4`).
//!
//! S3 differs from the other services in two settings: an object key is signed as written
//! (its path is percent-encoded once and never normalised, so `a/./b` stays three segments),
//! and a request signed in its headers declares its payload's SHA-256 in
//! `x-amz-content-sha256`. A presigned URL signs no payload: the client sends it later.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningInstructions, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bazaar_shared::ports::BlobError;

/// The signing name of S3.
const SERVICE: &str = "s3";

/// Where the signature goes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Placement<'a> {
    /// In the `Authorization` header, over this payload (a request this process sends).
    Headers { payload: &'a [u8] },
    /// In the query string, valid for this long from `time` (a URL handed to a client).
    Query { expires_in: Duration },
}

/// What one request needs signed.
#[derive(Debug)]
pub(super) struct Unsigned<'a> {
    pub method: &'a str,
    /// The whole URL, its path and query already percent-encoded.
    pub url: &'a str,
    /// Headers the request will carry, all of them signed (besides `host`, taken from `url`).
    pub headers: &'a [(&'a str, &'a str)],
}

/// The headers or query parameters that carry the signature of `request`, signed at `time`.
pub(super) fn sign_request(
    request: &Unsigned<'_>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
    placement: Placement<'_>,
) -> Result<SigningInstructions, BlobError> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let body = match placement {
        Placement::Headers { payload } => {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            SignableBody::Bytes(payload)
        }
        Placement::Query { expires_in } => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires_in);
            SignableBody::UnsignedPayload
        }
    };
    let identity = Identity::from(credentials.clone());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|error| BlobError::Unavailable(format!("cannot sign for S3: {error}")))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        body,
    )
    .map_err(|error| BlobError::Unavailable(format!("cannot sign for S3: {error}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|error| BlobError::Unavailable(format!("cannot sign for S3: {error}")))?
        .into_parts();
    Ok(instructions)
}

/// The examples of Amazon's S3 documentation ("Signature Calculations for the Authorization
/// Header" and "Query String Authentication"), which fix the settings above: a wrong
/// encoding, normalisation or payload hash changes every one of these signatures. moto does
/// not check signatures, so these are what shows that real S3 will accept ours.
#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn credentials() -> Credentials {
        Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "example")
    }

    /// 2013-05-24T00:00:00Z, the time of every example.
    fn example_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn authorization(instructions: &SigningInstructions) -> String {
        instructions
            .headers()
            .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.to_owned())
            .expect("an authorization header")
    }

    #[test]
    fn a_ranged_get_is_signed_as_s3_documents() {
        let request = Unsigned {
            method: "GET",
            url: "https://examplebucket.s3.amazonaws.com/test.txt",
            headers: &[("range", "bytes=0-9")],
        };
        let instructions = sign_request(
            &request,
            &credentials(),
            "us-east-1",
            example_time(),
            Placement::Headers { payload: b"" },
        )
        .expect("sign");
        assert_eq!(
            authorization(&instructions),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn a_put_of_an_escaped_key_is_signed_as_s3_documents() {
        let request = Unsigned {
            method: "PUT",
            url: "https://examplebucket.s3.amazonaws.com/test%24file.text",
            headers: &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
        };
        let instructions = sign_request(
            &request,
            &credentials(),
            "us-east-1",
            example_time(),
            Placement::Headers {
                payload: b"Welcome to Amazon S3.",
            },
        )
        .expect("sign");
        assert_eq!(
            authorization(&instructions),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, \
             Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn a_presigned_get_is_signed_as_s3_documents() {
        let request = Unsigned {
            method: "GET",
            url: "https://examplebucket.s3.amazonaws.com/test.txt",
            headers: &[],
        };
        let instructions = sign_request(
            &request,
            &credentials(),
            "us-east-1",
            example_time(),
            Placement::Query {
                expires_in: Duration::from_secs(86_400),
            },
        )
        .expect("sign");
        assert_eq!(instructions.headers().count(), 0);
        let params: Vec<(&str, &str)> = instructions
            .params()
            .iter()
            .map(|(name, value)| (*name, value.as_ref()))
            .collect();
        assert!(params.contains(&("X-Amz-Expires", "86400")), "{params:?}");
        assert!(
            params.contains(&("X-Amz-SignedHeaders", "host")),
            "{params:?}"
        );
        assert!(
            params.contains(&(
                "X-Amz-Signature",
                "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            )),
            "{params:?}"
        );
    }

    #[test]
    fn a_session_token_is_signed_with_the_request() {
        let temporary = Credentials::new(ACCESS_KEY, SECRET_KEY, Some("token".into()), None, "t");
        let request = Unsigned {
            method: "GET",
            url: "https://examplebucket.s3.amazonaws.com/test.txt",
            headers: &[],
        };
        let query = sign_request(
            &request,
            &temporary,
            "us-east-1",
            example_time(),
            Placement::Query {
                expires_in: Duration::from_secs(60),
            },
        )
        .expect("sign");
        assert!(
            query
                .params()
                .iter()
                .any(|(name, value)| *name == "X-Amz-Security-Token" && value == "token")
        );
        let headers = sign_request(
            &request,
            &temporary,
            "us-east-1",
            example_time(),
            Placement::Headers { payload: b"" },
        )
        .expect("sign");
        assert!(authorization(&headers).contains("x-amz-security-token"));
    }
}
