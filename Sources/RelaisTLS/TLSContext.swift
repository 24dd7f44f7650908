import COpenSSL

/// An OpenSSL `SSL_CTX`: the certificate, key and trust settings shared by
/// many connections. TLS 1.2 at least, no compression, no renegotiation.
/// OpenSSL makes a configured context safe to share between threads.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    public let isServer: Bool
    /// For clients: check the peer's certificate and name.
    public let verifiesPeer: Bool

    /// The key-exchange groups a server offers by default (Mozilla's
    /// intermediate profile): no X448, no P-521.
    public static let defaultGroups = ["X25519", "P-256", "P-384"]

    /// A server context with the certificate chain and key (PEM files),
    /// offering the key-exchange `groups` (OpenSSL names).
    public static func server(certificateChain: String, privateKey: String,
                              groups: [String] = TLSContext.defaultGroups) throws -> TLSContext {
        let context = try TLSContext(server: true, verify: false)
        guard !groups.isEmpty, relais_ssl_ctx_set_groups(context.context, groups.joined(separator: ":")) == 1 else {
            throw TLSError.fromQueue("cannot offer the groups \(groups.joined(separator: ", "))")
        }
        // TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are all modern.
        guard SSL_CTX_set_cipher_list(context.context, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20") == 1 else {
            throw TLSError.fromQueue("cannot set the cipher suites")
        }
        guard SSL_CTX_use_certificate_chain_file(context.context, certificateChain) == 1 else {
            throw TLSError.fromQueue("cannot load the certificate \(certificateChain)")
        }
        guard SSL_CTX_use_PrivateKey_file(context.context, privateKey, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError.fromQueue("cannot load the private key \(privateKey)")
        }
        guard SSL_CTX_check_private_key(context.context) == 1 else {
            throw TLSError.fromQueue("the private key \(privateKey) does not match the certificate")
        }
        return context
    }

    /// The server certificate's subject (`/CN=...`) and expiry
    /// (`Dec  1 00:00:00 2027 GMT`), for `relais check`.
    public var certificate: (subject: String, expires: String)? {
        guard let certificate = relais_ssl_ctx_certificate(context) else { return nil }
        var name = [CChar](repeating: 0, count: 512)
        X509_NAME_oneline(X509_get_subject_name(certificate), &name, Int32(name.count))
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        ASN1_TIME_print(bio, X509_get0_notAfter(certificate))
        var time = [UInt8](repeating: 0, count: 128)
        let count = BIO_read(bio, &time, Int32(time.count))
        return (String(decoding: name.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self),
                String(decoding: time.prefix(max(0, Int(count))), as: UTF8.self))
    }

    /// A client context trusting `caFile` (PEM), or the system store.
    public static func client(verify: Bool, caFile: String?) throws -> TLSContext {
        let context = try TLSContext(server: false, verify: verify)
        if let caFile {
            guard SSL_CTX_load_verify_locations(context.context, caFile, nil) == 1 else {
                throw TLSError.fromQueue("cannot load the CA file \(caFile)")
            }
        } else if SSL_CTX_set_default_verify_paths(context.context) != 1 {
            throw TLSError.fromQueue("cannot load the system CA store")
        }
        SSL_CTX_set_verify(context.context, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        // Lets a connection authenticate its server by TLSA records (`TLSHandler(dane:)`).
        guard SSL_CTX_dane_enable(context.context) > 0 else { throw TLSError.fromQueue("cannot enable DANE") }
        return context
    }

    private init(server: Bool, verify: Bool) throws {
        guard let context = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError.fromQueue("cannot create a TLS context")
        }
        self.context = context
        self.isServer = server
        self.verifiesPeer = verify
        guard relais_ssl_ctx_set_min_tls12(context) == 1 else { throw TLSError.fromQueue("cannot require TLS 1.2") }
        relais_ssl_ctx_harden(context)
    }

    deinit {
        SSL_CTX_free(context)
    }
}
