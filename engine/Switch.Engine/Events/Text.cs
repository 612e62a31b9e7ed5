using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;

namespace Switch.Engine.Events;

[InlineArray(Text32.CapacityBytes)]
public struct Bytes32 { private byte _first; }

[InlineArray(Text64.CapacityBytes)]
public struct Bytes64 { private byte _first; }

/// <summary>
/// Shared rules of the fixed-capacity text fields. Events are pre-allocated structs in a ring, so text lives
/// inline (no string, no allocation). A value longer than the capacity is not truncated: it is marked
/// overlong, so the business logic can reject it with a precise code instead of silently cutting it.
/// </summary>
public static class TextRules
{
    /// <summary>Length marker for a value that did not fit; the bytes are then empty.</summary>
    public const byte OverlongMarker = byte.MaxValue;

    public static void Set(Span<byte> destination, ref byte length, ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > destination.Length)
        {
            length = OverlongMarker;
            return;
        }
        utf8.CopyTo(destination);
        length = (byte)utf8.Length;
    }

    public static void Set(Span<byte> destination, ref byte length, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            length = 0;
            return;
        }
        // Encode straight into the slot; a value whose UTF-8 form does not fit is overlong.
        if (value.Length > destination.Length || !Encoding.UTF8.TryGetBytes(value, destination, out int written))
        {
            length = OverlongMarker;
            return;
        }
        length = (byte)written;
    }

    public static int Length(byte length) => length == OverlongMarker ? 0 : length;
}

/// <summary>Inline UTF-8 text of at most 32 bytes: institution codes, order numbers, accounts, reasons.</summary>
public struct Text32 : IEquatable<Text32>
{
    public const int CapacityBytes = 32;
    private byte _length;
    private Bytes32 _bytes;

    public readonly bool IsOverlong => _length == TextRules.OverlongMarker;
    public readonly bool IsEmpty => _length == 0;
    public readonly int Length => TextRules.Length(_length);
    [UnscopedRef] public readonly ReadOnlySpan<byte> Span => ((ReadOnlySpan<byte>)_bytes)[..Length];

    public void Set(ReadOnlySpan<byte> utf8) => TextRules.Set(_bytes, ref _length, utf8);
    public void Set(string? value) => TextRules.Set(_bytes, ref _length, value);
    public void SetOverlong() => _length = TextRules.OverlongMarker;
    public void Clear() => _length = 0;

    public static Text32 From(string? value)
    {
        var text = new Text32();
        text.Set(value);
        return text;
    }

    public readonly bool Equals(Text32 other) => _length == other._length && Span.SequenceEqual(other.Span);
    public readonly bool Equals(ReadOnlySpan<byte> utf8) => !IsOverlong && Span.SequenceEqual(utf8);
    public override readonly bool Equals(object? obj) => obj is Text32 other && Equals(other);
    public override readonly int GetHashCode() => (int)Hashing.StableHash.OfBytes(Span, _length);
    public override readonly string ToString() => IsOverlong ? "<overlong>" : Encoding.UTF8.GetString(Span);
}

/// <summary>Inline UTF-8 text of at most 64 bytes: the institution's echo field.</summary>
public struct Text64 : IEquatable<Text64>
{
    public const int CapacityBytes = 64;
    private byte _length;
    private Bytes64 _bytes;

    public readonly bool IsOverlong => _length == TextRules.OverlongMarker;
    public readonly bool IsEmpty => _length == 0;
    public readonly int Length => TextRules.Length(_length);
    [UnscopedRef] public readonly ReadOnlySpan<byte> Span => ((ReadOnlySpan<byte>)_bytes)[..Length];

    public void Set(ReadOnlySpan<byte> utf8) => TextRules.Set(_bytes, ref _length, utf8);
    public void Set(string? value) => TextRules.Set(_bytes, ref _length, value);
    public void SetOverlong() => _length = TextRules.OverlongMarker;
    public void Clear() => _length = 0;

    public readonly bool Equals(Text64 other) => _length == other._length && Span.SequenceEqual(other.Span);
    public override readonly bool Equals(object? obj) => obj is Text64 other && Equals(other);
    public override readonly int GetHashCode() => (int)Hashing.StableHash.OfBytes(Span, _length);
    public override readonly string ToString() => IsOverlong ? "<overlong>" : Encoding.UTF8.GetString(Span);
}
