using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Switch.Grpc.Framing;

/// <summary>The protobuf wire format's pieces for hand encoders (<see cref="IMessageEncoder"/>): varints, tags and
/// proto3's rule that a zero or empty field is left out. Field numbers below 16 only: one tag byte.</summary>
public static class ProtoWire
{
    public const int Varint = 0, LengthDelimited = 2;

    public static byte Tag(int field, int wireType)
    {
        if (field is < 1 or > 15) throw new ArgumentOutOfRangeException(nameof(field), field, "one tag byte holds fields 1 to 15");
        return (byte)(field << 3 | wireType);
    }

    public static int VarintBytes(ulong value) => BitOperations.Log2(value | 1) / 7 + 1;

    public static int WriteVarint(Span<byte> destination, ulong value)
    {
        int at = 0;
        while (value >= 0x80)
        {
            destination[at++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[at++] = (byte)value;
        return at;
    }

    /// <summary>An int64, int32, enum or bool field's bytes; negative int32 and enum values go sign-extended to 64 bits, as protobuf does.</summary>
    public static int FieldBytes(long value) => value == 0 ? 0 : 1 + VarintBytes((ulong)value);

    public static void WriteField(Span<byte> destination, ref int at, byte tag, long value)
    {
        if (value == 0) return;
        destination[at++] = tag;
        at += WriteVarint(destination[at..], (ulong)value);
    }

    /// <summary>A string or bytes field's bytes (nothing when empty).</summary>
    public static int FieldBytes(ReadOnlySpan<byte> value) => value.IsEmpty ? 0 : 1 + VarintBytes((ulong)value.Length) + value.Length;

    public static void WriteField(Span<byte> destination, ref int at, byte tag, ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty) return;
        destination[at++] = tag;
        at += WriteVarint(destination[at..], (ulong)value.Length);
        value.CopyTo(destination[at..]);
        at += value.Length;
    }
}

/// <summary>How one element's fields go on the wire, for <see cref="BatchFormEncoder{T, TCodec}"/>.</summary>
public interface IFieldsCodec<T>
{
    /// <summary>The message's repeated field that carries a batch of elements (each one a whole single message).</summary>
    static abstract int BatchField { get; }

    /// <summary>The encoded size of one element.</summary>
    static abstract int Bytes(in T fields);

    /// <summary>Writes one element; returns the bytes written.</summary>
    static abstract int Write(Span<byte> destination, in T fields);
}

/// <summary>
/// A message of the streams' batch form (bank.proto, institution.proto) encoded from flat fields: one element as the
/// single form, or a run of them as the batch field's elements. The elements' sizes are kept between sizing and writing.
/// </summary>
public struct BatchFormEncoder<T, TCodec>(T[] slots, int start, int count, bool batch, int[] elementBytes) : IMessageEncoder
    where TCodec : IFieldsCodec<T>
{
    private int _size = -1;

    public int CalculateSize()
    {
        if (count < 1 || (!batch && count != 1) || elementBytes.Length < count) throw new ArgumentException($"{count} elements, batch {batch}, {elementBytes.Length} sizes");
        if (!batch) return _size = TCodec.Bytes(slots[start]);
        int tagBytes = ProtoWire.VarintBytes(BatchTag);
        int total = 0;
        for (int i = 0; i < count; i++)
        {
            int bytes = elementBytes[i] = TCodec.Bytes(slots[start + i]);
            total += tagBytes + ProtoWire.VarintBytes((ulong)bytes) + bytes;
        }
        return _size = total;
    }

    public readonly int WriteTo(Span<byte> destination)
    {
        if (_size < 0) throw new InvalidOperationException("sized first");
        if (!batch) return TCodec.Write(destination, slots[start]);
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            at += ProtoWire.WriteVarint(destination[at..], BatchTag);
            at += ProtoWire.WriteVarint(destination[at..], (ulong)elementBytes[i]);
            at += TCodec.Write(destination[at..], slots[start + i]);
        }
        return at;
    }

    private static ulong BatchTag => (ulong)(TCodec.BatchField << 3 | ProtoWire.LengthDelimited);
}

/// <summary>How one element of a batch-form message is read, for <see cref="BatchFormMessage{TSelf, T, TDecoder}"/>: the
/// decoding counterpart of <see cref="IFieldsCodec{T}"/>.</summary>
public interface IFieldsDecoder<T> where T : struct
{
    /// <summary>The message's repeated field that carries a batch of elements (each one a whole single message).</summary>
    static abstract int BatchField { get; }

    /// <summary>An element with nothing read yet (its strings empty, not null).</summary>
    static abstract T Empty { get; }

    /// <summary>Reads the field of <paramref name="tag"/> into <paramref name="fields"/>; false when it is none of them (then skipped).</summary>
    static abstract bool Read(ref ParseContext input, uint tag, ref T fields);

    /// <summary>Counts one element of an element's own batch (only a malformed message has any: it is read and dropped).</summary>
    static abstract void CountNested(ref T fields);

    static abstract MessageDescriptor Descriptor { get; }
}

/// <summary>
/// A message of the streams' batch form (bank.proto, institution.proto) decoded by hand into flat fields: the single form,
/// or each element of the batch field into an array rented from the pool and given back by <see cref="Release"/>. Reading a
/// batch then builds no message object per element, no repeated field and no array per message (a generated type makes all
/// three). Unknown fields are skipped, as the generated parser keeps and ignores them; only parsed, never written.
/// </summary>
/// <typeparam name="TSelf">The concrete message (its parser makes one per message).</typeparam>
public abstract class BatchFormMessage<TSelf, T, TDecoder> : IMessage<TSelf>, IBufferMessage
    where TSelf : BatchFormMessage<TSelf, T, TDecoder>
    where T : struct
    where TDecoder : IFieldsDecoder<T>
{
    /// <summary>The first batch array rented; it doubles past that, up to the message's elements.</summary>
    private const int FirstBatchCapacity = 64;
    private static readonly uint BatchTag = (uint)(TDecoder.BatchField << 3 | ProtoWire.LengthDelimited);

    private T _single = TDecoder.Empty;
    private T[] _batch = [];
    private int _count;
    /// <summary>Decodes one batch element at a time (ParseContext reads a nested message into an IBufferMessage).</summary>
    private Element? _element;

    /// <summary>The batch's elements (0: the single form).</summary>
    public int BatchCount => _count;

    /// <summary>Elements the message carries: the batch's, or the single one.</summary>
    public int Count => Math.Max(1, _count);

    public ref readonly T At(int index) => ref _count == 0 ? ref _single : ref _batch[index];

    public ref readonly T Single => ref _single;

    /// <summary>The batch's elements as a list, for the batch form's checks (empty for the single form).</summary>
    public ArraySegment<T> Batch => new(_batch, 0, _count);

    /// <summary>Gives the batch's array back to the pool; the message is empty after.</summary>
    public void Release()
    {
        if (_batch.Length > 0) ArrayPool<T>.Shared.Return(_batch, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        _batch = [];
        _count = 0;
        _single = TDecoder.Empty;
    }

    public void InternalMergeFrom(ref ParseContext input)
    {
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if ((tag & 7) == 4) return; // an end-group tag ends the message, as the generated parser does
            if (tag == BatchTag)
            {
                if (_count == _batch.Length) Grow();
                _element ??= new Element();
                _element.Fields = TDecoder.Empty;
                input.ReadMessage(_element);
                _batch[_count++] = _element.Fields;
            }
            else if (!TDecoder.Read(ref input, tag, ref _single))
            {
                UnknownFieldSet.MergeFieldFrom(null, ref input); // skipped (a newer peer's field): allocates, only then
            }
        }
    }

    private void Grow()
    {
        T[] larger = ArrayPool<T>.Shared.Rent(_batch.Length == 0 ? FirstBatchCapacity : _batch.Length * 2);
        _batch.AsSpan(0, _count).CopyTo(larger);
        if (_batch.Length > 0) ArrayPool<T>.Shared.Return(_batch, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        _batch = larger;
    }

    /// <summary>A batch element: its own fields, and its own batch only counted (a nested batch refuses the message).</summary>
    private sealed class Element : IMessage<Element>, IBufferMessage
    {
        public T Fields;
        private Element? _nested;

        public void InternalMergeFrom(ref ParseContext input)
        {
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                if ((tag & 7) == 4) return;
                if (tag == BatchTag)
                {
                    TDecoder.CountNested(ref Fields);
                    _nested ??= new Element();
                    input.ReadMessage(_nested); // read and dropped
                }
                else if (!TDecoder.Read(ref input, tag, ref Fields))
                {
                    UnknownFieldSet.MergeFieldFrom(null, ref input);
                }
            }
        }

        public MessageDescriptor Descriptor => TDecoder.Descriptor;
        public void MergeFrom(Element message) => throw new NotSupportedException("only parsed from bytes");
        public void MergeFrom(CodedInputStream input) => input.ReadRawMessage(this);
        public void WriteTo(CodedOutputStream output) => throw new NotSupportedException("only parsed");
        public void InternalWriteTo(ref WriteContext output) => throw new NotSupportedException("only parsed");
        public int CalculateSize() => throw new NotSupportedException("only parsed");
        public Element Clone() => throw new NotSupportedException("only parsed");
        public bool Equals(Element? other) => ReferenceEquals(this, other);
        public override bool Equals(object? obj) => ReferenceEquals(this, obj);
        public override int GetHashCode() => 0;
    }

    public MessageDescriptor Descriptor => TDecoder.Descriptor;
    public void MergeFrom(TSelf message) => throw new NotSupportedException("only parsed from bytes");
    public void MergeFrom(CodedInputStream input) => input.ReadRawMessage(this);
    public void WriteTo(CodedOutputStream output) => throw new NotSupportedException("only parsed");
    public void InternalWriteTo(ref WriteContext output) => throw new NotSupportedException("only parsed");
    public int CalculateSize() => throw new NotSupportedException("only parsed");
    public TSelf Clone() => throw new NotSupportedException("only parsed");
    public bool Equals(TSelf? other) => ReferenceEquals(this, other);
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);
    public override int GetHashCode() => 0;
}
