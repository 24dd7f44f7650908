import Foundation
import RelaisTLS

/// Amazon SES SMTP passwords, derived from an IAM secret access key with
/// AWS's documented algorithm (Signature Version 4 chain over the fixed
/// date 11111111, the region, "ses", "aws4_request" and "SendRawEmail";
/// version byte 0x04; base64).
enum SESCredentials {
    static func smtpPassword(secretAccessKey: String, region: String) -> String {
        var signature = HMAC.sha256(key: Array(("AWS4" + secretAccessKey).utf8), data: Array("11111111".utf8))
        for part in [region, "ses", "aws4_request", "SendRawEmail"] {
            signature = HMAC.sha256(key: signature, data: Array(part.utf8))
        }
        return Data([0x04] + signature).base64EncodedString()
    }
}
