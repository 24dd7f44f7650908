/// Lua modules shipped inside the binary, found by `require` before the
/// modules beside the policy: `relais.lists` and the provider presets; and
/// the helpers every state runs first.
/// Their sources are the `.lua` files in `Modules/`, embedded at build time.
enum BuiltInModules {
    /// Every built-in module by name.
    static let sources: [String: String] = {
        var all = ["relais.lists": PackageResources.relais_lists_lua, "presets.common": PackageResources.presets_common_lua]
        for (name, bytes) in PresetSources.bytes { all["presets." + name] = bytes }
        return all.mapValues { String(decoding: $0, as: UTF8.self) }
    }()

    /// `relais.dnsbl` and `relais.rate`, run in every state before the policy.
    static let helpers = String(decoding: PackageResources.relais_helpers_lua, as: UTF8.self)
}

/// The provider presets, Lua modules `presets.<name>` shipped in the binary
/// (`Modules/presets.<name>.lua`). Each is data (host, ports, TLS, username
/// convention, limits, headers, where the facts come from and when they
/// were checked) handed to `presets.common`, which builds the
/// `relais.smarthost` table; every field can be overridden.
enum PresetSources {
    fileprivate static let bytes: [String: [UInt8]] = [
        "brevo": PackageResources.presets_brevo_lua,
        "fastmail": PackageResources.presets_fastmail_lua,
        "gmail": PackageResources.presets_gmail_lua,
        "google_relay": PackageResources.presets_google_relay_lua,
        "icloud": PackageResources.presets_icloud_lua,
        "mailgun": PackageResources.presets_mailgun_lua,
        "mailjet": PackageResources.presets_mailjet_lua,
        "microsoft365": PackageResources.presets_microsoft365_lua,
        "ovh": PackageResources.presets_ovh_lua,
        "postmark": PackageResources.presets_postmark_lua,
        "proton_bridge": PackageResources.presets_proton_bridge_lua,
        "resend": PackageResources.presets_resend_lua,
        "scaleway": PackageResources.presets_scaleway_lua,
        "sendgrid": PackageResources.presets_sendgrid_lua,
        "ses": PackageResources.presets_ses_lua,
        "sparkpost": PackageResources.presets_sparkpost_lua,
        "yahoo": PackageResources.presets_yahoo_lua,
        "zoho": PackageResources.presets_zoho_lua,
    ]

    /// Each preset's Lua source by preset name.
    static let presets: [String: String] = bytes.mapValues { String(decoding: $0, as: UTF8.self) }

    /// `presets.common`, which every preset requires.
    static var common: String { BuiltInModules.sources["presets.common"] ?? "" }
}
