using Switch.Engine.Events;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>
/// A short byte string (at most 32 bytes) scoped by an owner index, as a dictionary key that neither allocates
/// nor boxes: (institution, order number) for idempotency, (bank, payer account) for daily limits.
/// </summary>
public readonly struct ScopedKey : IEquatable<ScopedKey>
{
    private readonly int _scope;
    private readonly int _length;
    private readonly Bytes32 _bytes;

    public ScopedKey(int scope, ReadOnlySpan<byte> value)
    {
        if (value.Length > Text32.CapacityBytes) throw new ArgumentException("key longer than 32 bytes", nameof(value));
        _scope = scope;
        _length = value.Length;
        Bytes32 bytes = default;
        value.CopyTo(bytes);
        _bytes = bytes;
    }

    public bool Equals(ScopedKey other)
    {
        if (_scope != other._scope || _length != other._length)
        {
            return false;
        }
        ReadOnlySpan<byte> mine = _bytes;
        ReadOnlySpan<byte> theirs = other._bytes;
        return mine.SequenceEqual(theirs);
    }

    public override bool Equals(object? obj) => obj is ScopedKey other && Equals(other);

    /// <summary>This key is (<paramref name="scope"/>, <paramref name="value"/>): how an index that keeps only a
    /// fingerprint confirms a hit against the record it points at.</summary>
    public bool Is(int scope, ReadOnlySpan<byte> value)
    {
        ReadOnlySpan<byte> mine = _bytes;
        return _scope == scope && _length == value.Length && mine[.._length].SequenceEqual(value);
    }

    /// <summary>An order for sorting (snapshots write keys sorted so equal state gives equal bytes).</summary>
    public int CompareTo(in ScopedKey other)
    {
        if (_scope != other._scope) return _scope.CompareTo(other._scope);
        ReadOnlySpan<byte> mine = _bytes;
        ReadOnlySpan<byte> theirs = other._bytes;
        int c = mine[.._length].SequenceCompareTo(theirs[..other._length]);
        return c;
    }

    public override int GetHashCode()
    {
        ulong hash = Hash64();
        return (int)hash ^ (int)(hash >> 32);
    }

    /// <summary>The same in every process: the order index in memory and the archive on disk hash alike.</summary>
    public ulong Hash64()
    {
        ReadOnlySpan<byte> all = _bytes;
        ReadOnlySpan<ulong> words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(all);
        // Multiply-xor per word, one full mix at the end: cheap, and unused bytes are zero so they cost nothing. The
        // scope and length are mixed first: xored in raw, they overlapped the value's bytes, and (institution 1,
        // "ORD-4") met (institution 0, "ORD-5") — 15% of 200,000 order keys collided.
        ulong hash = StableHash.Mix(((ulong)(uint)_scope << 32) | (uint)_length);
        int usedWords = (_length + 7) >> 3;
        for (int i = 0; i < usedWords; i++)
        {
            hash = (hash ^ words[i]) * 0x9E3779B97F4A7C15UL;
        }
        return StableHash.Mix(hash);
    }
}
