using System.Runtime.InteropServices;
using System.Text;

namespace Switch.Engine.Snapshots;

/// <summary>
/// Reads what <see cref="StateWriter"/> wrote. Every read is bounds-checked and every count limited by the caller's
/// expectation: a snapshot is untrusted input until it has been applied, and a bad one is an
/// <see cref="InvalidDataException"/> naming what was wrong (recovery then falls back to an older one).
/// </summary>
public ref struct StateReader(ReadOnlySpan<byte> bytes)
{
    private readonly ReadOnlySpan<byte> _bytes = bytes;
    private int _position;

    public readonly int Remaining => _bytes.Length - _position;

    public void Section(string name)
    {
        string found = String(maxBytes: 64);
        if (found != name) throw new InvalidDataException($"snapshot: section '{name}' expected at byte {_position}, found '{found}'");
    }

    public long Long() => Value<long>();
    public int Int() => Value<int>();

    public bool Bool() => Value<byte>() switch
    {
        0 => false,
        1 => true,
        byte b => throw new InvalidDataException($"snapshot: a flag of {b} at byte {_position}"),
    };

    public T Value<T>() where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        T value = MemoryMarshal.Read<T>(Take(size));
        return value;
    }

    /// <summary>A count of at most <paramref name="maxCount"/>, then that many items.</summary>
    public ReadOnlySpan<T> Array<T>(int maxCount) where T : unmanaged
    {
        int count = Int();
        if (count < 0 || count > maxCount) throw new InvalidDataException($"snapshot: {count} items at byte {_position}, at most {maxCount} expected");
        return MemoryMarshal.Cast<byte, T>(Take(checked(count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>())));
    }

    /// <summary>A count that must equal <paramref name="count"/> (the configuration's), then the items into <paramref name="into"/>.</summary>
    public void ExactArray<T>(Span<T> into, string what) where T : unmanaged
    {
        ReadOnlySpan<T> items = Array<T>(int.MaxValue / 64);
        if (items.Length != into.Length) throw new InvalidDataException($"snapshot: {what} holds {items.Length} items, this configuration {into.Length}");
        items.CopyTo(into);
    }

    /// <summary>A count that must equal the configuration's (participants, endpoints).</summary>
    public void Expect(int count, string what)
    {
        int found = Int();
        if (found != count) throw new InvalidDataException($"snapshot: {found} {what}, the configuration has {count}");
    }

    public string String(int maxBytes = 4096) => Encoding.UTF8.GetString(Array<byte>(maxBytes));

    private ReadOnlySpan<byte> Take(int size)
    {
        if (size < 0 || size > Remaining) throw new InvalidDataException($"snapshot: {size} bytes wanted at byte {_position}, {Remaining} left");
        ReadOnlySpan<byte> span = _bytes.Slice(_position, size);
        _position += size;
        return span;
    }
}
