import Foundation
import NIOCore

/// Signing at acceptance and stamping at delivery: each signer's
/// signature is computed once over the final message (after every hook
/// changed it) and kept in the envelope; each target then carries the
/// signatures of its own signers and of those the data hook asked for.
extension Envelope {
    /// Signs `content` with each of `signers` (CPU work: call off the event loop).
    mutating func sign(_ content: ByteBuffer, with signers: [DKIMSigner], forAll: [String], time: Int) throws {
        guard !signers.isEmpty else { return }
        var signatures: [String: String] = [:]
        for signer in signers where signatures[signer.label] == nil {
            signatures[signer.label] = try signer.signature(for: content, time: time)
        }
        dkimSignatures = signatures
        dkimForAll = forAll.isEmpty ? nil : forAll
    }

    /// `content` with the signatures of `targetSigners` and of the
    /// message-wide signers on top, in that order, each once.
    func stamped(_ content: ByteBuffer, targetSigners: [String]?) -> ByteBuffer {
        guard let signatures = dkimSignatures else { return content }
        var seen = Set<String>()
        let labels = ((dkimForAll ?? []) + (targetSigners ?? [])).filter { seen.insert($0).inserted }
        let fields = labels.compactMap { signatures[$0] }
        guard !fields.isEmpty else { return content }
        var result = ByteBuffer(string: fields.joined())
        var body = content
        result.writeBuffer(&body)
        return result
    }
}
