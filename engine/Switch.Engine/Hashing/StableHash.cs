namespace Switch.Engine.Hashing;

/// <summary>
/// Hashes that are the same in every process and on every run (string.GetHashCode is not): routing and the
/// state hash must come out identical when the journal is replayed, possibly on another machine.
/// </summary>
public static class StableHash
{
    private const ulong FnvOffset = 14695981039346656037UL;
    private const ulong FnvPrime = 1099511628211UL;

    /// <summary>SplitMix64 finaliser: a full-avalanche mix of one 64-bit value.</summary>
    public static ulong Mix(ulong value)
    {
        value += 0x9E3779B97F4A7C15UL;
        value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9UL;
        value = (value ^ (value >> 27)) * 0x94D049BB133111EBUL;
        return value ^ (value >> 31);
    }

    /// <summary>FNV-1a over the bytes, seeded, then mixed.</summary>
    public static ulong OfBytes(ReadOnlySpan<byte> bytes, ulong seed = 0)
    {
        ulong hash = FnvOffset ^ seed;
        foreach (byte b in bytes)
        {
            hash = (hash ^ b) * FnvPrime;
        }
        return Mix(hash);
    }

    /// <summary>Accumulates values into a running hash; order matters.</summary>
    public static ulong Combine(ulong hash, ulong value) => Mix(hash ^ Mix(value + 0x632BE59BD9B4E019UL));
}
