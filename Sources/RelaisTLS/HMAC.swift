import COpenSSL

/// HMAC on the system OpenSSL, for credentials derived from keys (Amazon
/// SES SMTP passwords).
public enum HMAC {
    public static func sha256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: 32)
        var length = 0
        let result = key.withUnsafeBytes { keyBytes in
            data.withUnsafeBytes { dataBytes in
                output.withUnsafeMutableBytes { out in
                    EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, keyBytes.baseAddress, keyBytes.count,
                              dataBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), dataBytes.count,
                              out.baseAddress?.assumingMemoryBound(to: UInt8.self), out.count, &length)
                }
            }
        }
        return result == nil ? [] : Array(output.prefix(length))
    }
}
