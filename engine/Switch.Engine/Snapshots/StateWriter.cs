using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;

namespace Switch.Engine.Snapshots;

/// <summary>
/// Writes the logic's state as flat little-endian values into a growing buffer: the part of a snapshot the logic
/// thread captures at once (everything but the transaction table's pages, which are copied later, see
/// <see cref="PageCapture{T}"/>). Reused from one snapshot to the next, so a steady state allocates nothing new.
/// Each collaborator writes a section tag first, so a reader that loses its place fails at once, naming where.
/// </summary>
public sealed class StateWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 16);

    public int WrittenBytes => _buffer.WrittenCount;
    /// <summary>Bytes the buffer holds before it must grow (a growth allocates and copies: not in a snapshot's pause).</summary>
    public int CapacityBytes => _buffer.Capacity;
    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;

    public void Clear() => _buffer.Clear();

    /// <summary>A section's name, checked by <see cref="StateReader.Section"/>.</summary>
    public void Section(string name) => String(name);

    public void Long(long value) => Value(value);
    public void Int(int value) => Value(value);
    public void Bool(bool value) => Value(value ? (byte)1 : (byte)0);

    public void Value<T>(in T value) where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        Span<byte> span = _buffer.GetSpan(size);
        MemoryMarshal.Write(span, in value);
        _buffer.Advance(size);
    }

    /// <summary>What another writer wrote, as it is (a part of the state written apart, then put in its place).</summary>
    public void Append(ReadOnlySpan<byte> written)
    {
        written.CopyTo(_buffer.GetSpan(written.Length));
        _buffer.Advance(written.Length);
    }

    /// <summary>A count then the items' bytes.</summary>
    public void Array<T>(ReadOnlySpan<T> items) where T : unmanaged
    {
        Int(items.Length);
        Append(MemoryMarshal.AsBytes(items));
    }

    /// <summary>Its UTF-8 length, then its bytes, encoded straight into the buffer: each section's tag is one, and an
    /// array each was most of what a snapshot's pause allocated.</summary>
    public void String(string value)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        Int(length);
        Span<byte> span = _buffer.GetSpan(length);
        Encoding.UTF8.GetBytes(value, span);
        _buffer.Advance(length);
    }
}
