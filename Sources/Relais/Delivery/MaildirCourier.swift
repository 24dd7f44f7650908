import NIOPosix

/// Delivers into a local maildir: the file is durable (in `tmp/`) and in
/// `new/` (see `Maildir`) before the recipients count as delivered.
struct MaildirCourier: Courier {
    let path: String
    let writer: MaildirWriter
    let threadPool: NIOThreadPool

    var name: String { RouteTarget.maildir(path: path).description }

    func deliver(_ parcel: Parcel) async throws(CourierUnavailable) -> [String: RecipientOutcome] {
        let (path, writer) = (self.path, self.writer)
        do {
            try await threadPool.runIfActive {
                let content = parcel.envelope.stamped(parcel.content, targetSigners: nil)
                let file = try writer.pendingFile(in: path, for: parcel.envelope, content: content)
                if case .failure(let error) = DurableFiles.write([file])[0] { throw error }
            }
        } catch {
            throw CourierUnavailable("maildir \(path): \(error)")
        }
        return Dictionary(every: parcel.recipients, .delivered("250 2.0.0 delivered to maildir \(path)", dsnPassedOn: false))
    }
}
