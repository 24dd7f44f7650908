import CLua
import COpenSSL
import Testing

/// The system-library targets link the versions the later policy and TLS
/// work is written against.
struct SystemLibraryTests {
    @Test func luaIs54() throws {
        let state = try #require(luaL_newstate())
        defer { lua_close(state) }
        #expect(lua_version(state) == 504)
    }

    @Test func openSSLIs3() {
        #expect(OpenSSL_version_num() >= 0x3000_0000)
    }
}
