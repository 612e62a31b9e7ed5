using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Switch.Grpc.Framing;

/// <summary>A text field's place in its message's bytes (an empty or absent field is length 0).</summary>
public readonly record struct TextAt(int Offset, int Length)
{
    public ReadOnlySpan<byte> In(ReadOnlySpan<byte> message) => message.Slice(Offset, Length);
}

/// <summary>
/// The protobuf wire format's pieces for hand encoders (<see cref="IMessageEncoder"/>): varints, tags and proto3's rule
/// that a zero or empty field is left out (field numbers below 16 only: one tag byte); and for hand decoders, readers
/// over a message's bytes that take the shapes a peer sends and answer false for anything else (a truncated or over-long
/// field, a group, text that is not UTF-8), which the caller leaves to the generated parser to decide and word.
/// </summary>
public static class ProtoWire
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;
    private const int VarintMaxBytes = 10, TagMaxBytes = 5;

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

    /// <summary>A tag of at most 5 bytes naming a field above 0 (protobuf refuses field 0).</summary>
    public static bool TryTag(ReadOnlySpan<byte> message, ref int at, int end, out uint tag)
    {
        int start = at;
        tag = 0;
        if (!TryVarint(message, ref at, end, out ulong value) || at - start > TagMaxBytes || value > uint.MaxValue || value >> 3 == 0) return false;
        tag = (uint)value;
        return true;
    }

    /// <summary>A varint of at most 10 bytes whose last byte holds only the 64th bit (anything longer is the generated parser's to judge).</summary>
    public static bool TryVarint(ReadOnlySpan<byte> message, ref int at, int end, out ulong value)
    {
        if (at < end && message[at] < 0x80)
        {
            value = message[at++]; // one byte: every tag and most values the streams carry
            return true;
        }
        value = 0;
        for (int i = 0; i < VarintMaxBytes && at < end; i++)
        {
            byte b = message[at++];
            value |= (ulong)(b & 0x7F) << (7 * i);
            if (b < 0x80) return i < VarintMaxBytes - 1 || b <= 1;
        }
        return false;
    }

    /// <summary>A length of at most 5 bytes whose bytes are all there (a negative or truncated length is a refusal).</summary>
    public static bool TryLength(ReadOnlySpan<byte> message, ref int at, int end, out int length)
    {
        int start = at;
        length = 0;
        if (!TryVarint(message, ref at, end, out ulong value) || at - start > TagMaxBytes || value > (ulong)(end - at)) return false;
        length = (int)value;
        return true;
    }

    /// <summary>A string field's bytes, left in place; they must be UTF-8.</summary>
    public static bool TryText(ReadOnlySpan<byte> message, ref int at, int end, out TextAt text)
    {
        text = default;
        if (!TryLength(message, ref at, end, out int length) || !System.Text.Unicode.Utf8.IsValid(message.Slice(at, length))) return false;
        text = new TextAt(at, length);
        at += length;
        return true;
    }

    /// <summary>Skips a field the reader does not know (a newer peer's, or a known number with another wire type, as the
    /// generated parser takes it). Groups (wire types 3 and 4) and wire types 6 and 7 are not taken.</summary>
    public static bool TrySkip(ReadOnlySpan<byte> message, ref int at, int end, uint tag)
    {
        switch ((int)(tag & 7))
        {
            case Varint: return TryVarint(message, ref at, end, out _);
            case Fixed64: return TrySkipBytes(ref at, end, 8);
            case LengthDelimited: return TryLength(message, ref at, end, out int length) && TrySkipBytes(ref at, end, length);
            case Fixed32: return TrySkipBytes(ref at, end, 4);
            default: return false;
        }
    }

    private static bool TrySkipBytes(ref int at, int end, int bytes)
    {
        if (bytes > end - at) return false;
        at += bytes;
        return true;
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

/// <summary>One message of the single form encoded from its flat fields (a unary answer): no arrays, as the batch form's
/// encoder needs, so a call allocates nothing for it.</summary>
public readonly struct SingleFormEncoder<T, TCodec>(T fields) : IMessageEncoder
    where TCodec : IFieldsCodec<T>
{
    private readonly T _fields = fields;

    public int CalculateSize() => TCodec.Bytes(_fields);

    public int WriteTo(Span<byte> destination) => TCodec.Write(destination, _fields);
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

/// <summary>A message that decodes its frame's bytes itself (<see cref="BatchFormMessage{TSelf, T, TDecoder}"/>):
/// <see cref="GrpcMessageReader{T}"/> hands it the bytes instead of parsing them. It may keep a view of them, valid until
/// the reader's next read: its reader must be done with a message before reading the next.</summary>
public interface IDecodesOwnBytes
{
    /// <exception cref="InvalidProtocolBufferException">The bytes are not the message (the generated parser's words).</exception>
    /// <exception cref="InvalidDataException">A shape the generated parser takes but no peer sends (a group, text that is not UTF-8).</exception>
    void DecodeFrom(in ReadOnlySequence<byte> message);
}

/// <summary>A message's bytes as one span: the frame's own when it came in one piece (a view, valid until the reader's
/// next read), else one copy into a rented array, given back by the next <see cref="Hold"/> or by <see cref="Release"/>.</summary>
public struct HeldBytes
{
    private byte[]? _owned;

    public ReadOnlyMemory<byte> Memory { get; private set; }

    public void Hold(in ReadOnlySequence<byte> message)
    {
        if (message.IsSingleSegment)
        {
            Release();
            Memory = message.First;
            return;
        }
        // A message across the body's buffer segments (a large batch often is).
        int length = checked((int)message.Length);
        message.CopyTo(Rent(length));
        Memory = _owned.AsMemory(0, length);
    }

    /// <summary>An owned array of at least <paramref name="bytes"/> (the previous bytes given back) for the caller to fill,
    /// then <see cref="Use"/>.</summary>
    public byte[] Rent(int bytes)
    {
        Release();
        return _owned = ArrayPool<byte>.Shared.Rent(Math.Max(bytes, 1));
    }

    /// <summary>The first <paramref name="length"/> bytes of the array <see cref="Rent"/> gave.</summary>
    public void Use(int length) => Memory = (_owned ?? throw new InvalidOperationException("rented first")).AsMemory(0, length);

    public void Release()
    {
        Memory = default;
        if (_owned is not { } owned) return;
        _owned = null;
        ArrayPool<byte>.Shared.Return(owned);
    }
}

/// <summary>How one element of a batch-form message is read, for <see cref="BatchFormMessage{TSelf, T, TDecoder}"/>: the
/// decoding counterpart of <see cref="IFieldsCodec{T}"/>. An element's default is "nothing read" (its text <see cref="TextAt"/>s empty).</summary>
public interface IFieldsDecoder<T> where T : struct
{
    /// <summary>The message's repeated field that carries a batch of elements (each one a whole single message).</summary>
    static abstract int BatchField { get; }

    /// <summary>Reads the field of <paramref name="tag"/> at <paramref name="at"/> into <paramref name="fields"/> (text left in
    /// place, <see cref="ProtoWire.TryText"/>), or skips it when unknown (<see cref="ProtoWire.TrySkip"/>); false for a shape the
    /// hand path does not take.</summary>
    static abstract bool TryRead(ReadOnlySpan<byte> message, ref int at, int end, uint tag, ref T fields);

    /// <summary>Counts one element of an element's own batch (only a malformed message has any: it is skipped).</summary>
    static abstract void CountNested(ref T fields);

    static abstract MessageDescriptor Descriptor { get; }
}

/// <summary>
/// A message of the streams' batch form (bank.proto, institution.proto) decoded by hand from its bytes into flat fields
/// (<see cref="IDecodesOwnBytes"/>): the single form, or each element of the batch field into an array rented from the pool
/// and given back by <see cref="Release"/>. Text stays in the message's bytes (<see cref="Bytes"/>, valid until the stream's
/// next read): reading a batch builds no message object per element, no repeated field, no array and no string. Unknown
/// fields are skipped, as the generated parser keeps and ignores them; bytes the hand path does not take go to the generated
/// parser for its refusal. Only read from a stream, never written.
/// </summary>
/// <typeparam name="TSelf">The concrete message (its parser makes one per message).</typeparam>
public abstract class BatchFormMessage<TSelf, T, TDecoder> : IMessage<TSelf>, IBufferMessage, IDecodesOwnBytes
    where TSelf : BatchFormMessage<TSelf, T, TDecoder>
    where T : struct
    where TDecoder : IFieldsDecoder<T>
{
    /// <summary>The first batch array rented; it doubles past that, up to the message's elements.</summary>
    private const int FirstBatchCapacity = 64;
    private static readonly uint BatchTag = (uint)(TDecoder.BatchField << 3 | ProtoWire.LengthDelimited);

    private T _single;
    private T[] _batch = [];
    private int _count;
    private HeldBytes _bytes;

    /// <summary>The batch's elements (0: the single form).</summary>
    public int BatchCount => _count;

    /// <summary>Elements the message carries: the batch's, or the single one.</summary>
    public int Count => Math.Max(1, _count);

    public ref readonly T At(int index) => ref _count == 0 ? ref _single : ref _batch[index];

    public ref readonly T Single => ref _single;

    /// <summary>The batch's elements as a list, for the batch form's checks (empty for the single form).</summary>
    public ArraySegment<T> Batch => new(_batch, 0, _count);

    /// <summary>The message's bytes, which the elements' <see cref="TextAt"/>s point into.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes.Memory.Span;

    /// <summary>Gives the batch's array (and any copy of the bytes) back to the pool; the message is empty after.</summary>
    public void Release()
    {
        if (_batch.Length > 0) ArrayPool<T>.Shared.Return(_batch, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        _batch = [];
        _count = 0;
        _single = default;
        _bytes.Release();
    }

    public void DecodeFrom(in ReadOnlySequence<byte> message)
    {
        _bytes.Hold(message);
        if (TryByHand(Bytes)) return;
        Release();
        TDecoder.Descriptor.Parser.ParseFrom(message); // throws its refusal
        throw new InvalidDataException($"{TDecoder.Descriptor.FullName}: a group or text that is not UTF-8, which no peer sends");
    }

    private bool TryByHand(ReadOnlySpan<byte> message)
    {
        _count = 0;
        _single = default;
        int at = 0;
        while (at < message.Length)
        {
            if (!ProtoWire.TryTag(message, ref at, message.Length, out uint tag)) return false;
            if (tag != BatchTag)
            {
                if (!TDecoder.TryRead(message, ref at, message.Length, tag, ref _single)) return false;
                continue;
            }
            if (!ProtoWire.TryLength(message, ref at, message.Length, out int length)) return false;
            if (_count == _batch.Length) Grow();
            ref T element = ref _batch[_count++];
            element = default;
            int end = at + length;
            while (at < end)
            {
                if (!ProtoWire.TryTag(message, ref at, end, out tag)) return false;
                if (tag != BatchTag)
                {
                    if (!TDecoder.TryRead(message, ref at, end, tag, ref element)) return false;
                    continue;
                }
                TDecoder.CountNested(ref element); // the message is refused for it: skipped unread
                if (!ProtoWire.TrySkip(message, ref at, end, tag)) return false;
            }
        }
        return true;
    }

    private void Grow()
    {
        T[] larger = ArrayPool<T>.Shared.Rent(_batch.Length == 0 ? FirstBatchCapacity : _batch.Length * 2);
        _batch.AsSpan(0, _count).CopyTo(larger);
        if (_batch.Length > 0) ArrayPool<T>.Shared.Return(_batch, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        _batch = larger;
    }

    /// <summary>Only an empty message, as the reader's parser makes the object <see cref="DecodeFrom"/> then fills.</summary>
    public void InternalMergeFrom(ref ParseContext input)
    {
        if (input.ReadTag() != 0) throw new NotSupportedException($"{TDecoder.Descriptor.FullName}: decoded from its bytes (DecodeFrom), not parsed");
    }

    public MessageDescriptor Descriptor => TDecoder.Descriptor;
    public void MergeFrom(TSelf message) => throw new NotSupportedException("only decoded from bytes");
    public void MergeFrom(CodedInputStream input) => input.ReadRawMessage(this);
    public void WriteTo(CodedOutputStream output) => throw new NotSupportedException("only decoded");
    public void InternalWriteTo(ref WriteContext output) => throw new NotSupportedException("only decoded");
    public int CalculateSize() => throw new NotSupportedException("only decoded");
    public TSelf Clone() => throw new NotSupportedException("only decoded");
    public bool Equals(TSelf? other) => ReferenceEquals(this, other);
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);
    public override int GetHashCode() => 0;
}
