using Switch.Engine.Business;

namespace Switch.Host.Configuration;

/// <summary>An operator of the switch: who, the SHA-256 digest of their key, and what they may do.</summary>
public sealed record OperatorConfig
{
    public const string RoleRead = "read";
    public const string RoleOperate = "operate";
    public const int MaxOperators = 1_000;
    /// <summary>The id goes into journaled operator events (a 32-byte field).</summary>
    public const int MaxIdBytes = 32;

    public string Id { get; init; } = "";
    /// <summary>"sha256:&lt;hex&gt;" of the operator's key.</summary>
    public string KeyHash { get; init; } = "";
    /// <summary>"read" (may look) or "operate" (may look and change).</summary>
    public string Role { get; init; } = "";
    /// <summary>A bank's or an institution's own key: read role, its own rows of the member report and nothing else.</summary>
    public OperatorScope? Scope { get; init; }

    public static bool IsValidId(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxIdBytes) return false;
        foreach (char c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) return false;
        }
        return true;
    }
}

/// <summary>What a scoped operator may see: exactly one of a bank (3-digit code) or an institution (its code).</summary>
public sealed record OperatorScope
{
    public string? Bank { get; init; }
    public string? Institution { get; init; }

    /// <summary>Null when well formed and naming a participant of <paramref name="config"/>; else why not.</summary>
    public string? Problem(SwitchConfig config)
    {
        if ((Bank is null) == (Institution is null)) return "exactly one of \"bank\" or \"institution\"";
        if (Bank is not null)
        {
            if (Bank.Length != 3 || !Bank.All(char.IsAsciiDigit)) return $"bank: a 3-digit bank code, got '{Bank}'";
            int code = int.Parse(Bank);
            if (!config.Banks.Any(b => b.Code == code)) return $"bank: no bank {Bank} in switch.banks";
            return null;
        }
        if (!config.Institutions.Any(i => i.Code == Institution)) return $"institution: no institution '{Institution}' in switch.institutions";
        return null;
    }

    /// <summary>How PERMISSION_DENIED messages name it: bank 102, institution ALIPAY.</summary>
    public override string ToString() => Bank is not null ? $"bank {Bank}" : $"institution {Institution}";
}
