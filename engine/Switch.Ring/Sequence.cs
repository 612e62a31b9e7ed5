using System.Runtime.InteropServices;

namespace Switch.Ring;

/// <summary>
/// A sequence number (a position in the ring) shared between threads: a producer cursor or a
/// consumer's progress. Reads are acquire, <see cref="SetValue"/> is release.
/// </summary>
/// <remarks>
/// The value sits alone on its cache line: 56 bytes of padding before it (plus the object header
/// and method table pointer) and 56 after it, so a producer writing one sequence never invalidates
/// the line a consumer is spinning on (false sharing costs far more than the write itself).
/// </remarks>
[StructLayout(LayoutKind.Explicit)]
public sealed class Sequence
{
    /// <summary>The value of a sequence that has seen nothing yet.</summary>
    public const long InitialValue = -1;

    private const int CacheLineBytes = 64;
    private const int ValueOffsetBytes = CacheLineBytes - 8;
    private const int TrailingPadOffsetBytes = ValueOffsetBytes + 8 + ValueOffsetBytes - 8;

    [FieldOffset(ValueOffsetBytes)]
    private long _value;

    // The runtime ignores StructLayout.Size on classes, so a real last field makes the trailing pad.
#pragma warning disable CS0169
    [FieldOffset(TrailingPadOffsetBytes)]
    private long _trailingPad;
#pragma warning restore CS0169

    public Sequence() : this(InitialValue)
    {
    }

    public Sequence(long initialValue)
    {
        Volatile.Write(ref _value, initialValue);
    }

    /// <summary>The current value, read with acquire semantics.</summary>
    public long Value => Volatile.Read(ref _value);

    /// <summary>Sets the value with release semantics: writes made before it are visible to a reader that sees it.</summary>
    public void SetValue(long value) => Volatile.Write(ref _value, value);

    /// <summary>Sets the value and then issues a full fence, so a later read cannot move before this write.</summary>
    public void SetValueVolatile(long value)
    {
        Volatile.Write(ref _value, value);
        Interlocked.MemoryBarrier();
    }

    /// <summary>Atomically sets the value to <paramref name="newValue"/> if it equals <paramref name="expected"/>.</summary>
    public bool CompareAndSet(long expected, long newValue) =>
        Interlocked.CompareExchange(ref _value, newValue, expected) == expected;

    /// <summary>Atomically adds <paramref name="delta"/> and returns the new value.</summary>
    public long AddAndGet(long delta) => Interlocked.Add(ref _value, delta);

    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
