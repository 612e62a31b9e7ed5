using System.Security.Cryptography;

namespace Switch.Host.Configuration;

/// <summary>API keys are stored as SHA-256 digests ("sha256:hex") and compared in constant time.</summary>
public static class ApiKeyHash
{
    public const string Prefix = "sha256:";

    /// <summary>The largest key limit <see cref="Match"/> takes (its key is encoded on the stack).</summary>
    public const int MaxKeyBytesLimit = 1024;

    public static string Of(string apiKey) => Prefix + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(apiKey)));

    /// <summary>
    /// The index of the digest matching <paramref name="key"/>, or -1. Every digest is compared in constant time,
    /// all of them every time, so timing tells nothing about which one matched or how close a guess came.
    /// </summary>
    public static int Match(IReadOnlyList<byte[]> digests, string? key, int maxKeyBytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxKeyBytes, MaxKeyBytesLimit);
        if (string.IsNullOrEmpty(key) || System.Text.Encoding.UTF8.GetByteCount(key) > maxKeyBytes) return -1;
        Span<byte> keyUtf8 = stackalloc byte[maxKeyBytes]; // bounded just above: no array a call
        int keyBytes = System.Text.Encoding.UTF8.GetBytes(key, keyUtf8);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(keyUtf8[..keyBytes], digest);
        int match = -1;
        for (int i = 0; i < digests.Count; i++)
        {
            if (CryptographicOperations.FixedTimeEquals(digests[i], digest)) match = i;
        }
        return match;
    }

    public static bool TryParse(string? credentialRef, out byte[] digest)
    {
        digest = [];
        if (credentialRef is null || !credentialRef.StartsWith(Prefix, StringComparison.Ordinal) || credentialRef.Length != Prefix.Length + 64)
        {
            return false;
        }
        try
        {
            digest = Convert.FromHexString(credentialRef.AsSpan(Prefix.Length));
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
