using System.Buffers.Binary;

namespace Switch.Engine.Events;

/// <summary>
/// The journal form of an input event: compact, little-endian, only the fields its kind uses, texts as a length
/// byte and their bytes (the overlong marker with no bytes). Versioning and checksums are the journal's; this is
/// the payload. Decoding checks every length against what is left, so a bad record is an error, never a misread.
/// </summary>
public static class EventCodec
{
    /// <summary>Upper bound of an encoded ring event (the genesis record is the only larger one).</summary>
    public const int MaxEncodedBytes = 512;

    public static int Encode(ref InputEvent e, Span<byte> destination)
    {
        var w = new Writer(destination);
        w.Byte((byte)e.Kind);
        w.Long(e.TimestampUs);
        switch (e.Kind)
        {
            case EventKind.InstitutionRequest:
                w.Long(e.CorrelationId);
                w.Byte((byte)e.RequestType);
                w.Long(e.AmountFen);
                w.Text(e.Institution.IsOverlong, e.Institution.Span);
                w.Text(e.OrderNo.IsOverlong, e.OrderNo.Span);
                w.Text(e.OriginalOrderNo.IsOverlong, e.OriginalOrderNo.Span);
                w.Text(e.BankRef.IsOverlong, e.BankRef.Span);
                w.Text(e.Account.IsOverlong, e.Account.Span);
                w.Text(e.Currency.IsOverlong, e.Currency.Span);
                w.Text(e.Echo.IsOverlong, e.Echo.Span);
                w.Long(e.ClientDeadlineUs);
                w.Long(e.JournaledUs);
                break;
            case EventKind.BankResult:
                w.Long(e.TransactionId);
                w.Byte((byte)e.Operation);
                w.Byte((byte)e.Reply);
                w.Text(e.Reason.IsOverlong, e.Reason.Span);
                break;
            case EventKind.Tick:
                break;
            case EventKind.SetEndpointWeights:
                w.Long(e.CorrelationId);
                w.Text(e.BankRef.IsOverlong, e.BankRef.Span);
                w.Actor(ref e);
                if (e.EndpointCount is < 0 or > InputEvent.MaxEndpointsPerBank)
                {
                    throw new ArgumentException($"event codec: endpoint count {e.EndpointCount} out of range");
                }
                w.Byte((byte)e.EndpointCount);
                for (int i = 0; i < e.EndpointCount; i++)
                {
                    w.Int(e.WeightsBps[i]);
                }
                w.Int(e.RampSteps);
                w.Long(e.RampDurationMs);
                break;
            case EventKind.SetEndpointState:
                w.Long(e.CorrelationId);
                w.Text(e.BankRef.IsOverlong, e.BankRef.Span);
                w.Actor(ref e);
                w.Int(e.EndpointIndex);
                w.Byte((byte)e.EndpointState);
                break;
            case EventKind.CloseBatch:
                w.Long(e.CorrelationId);
                w.Actor(ref e);
                break;
            case EventKind.EndpointReachability:
                w.Text(e.BankRef.IsOverlong, e.BankRef.Span);
                w.Actor(ref e);
                w.Int(e.EndpointIndex);
                w.Byte(e.Reachable ? (byte)1 : (byte)0);
                break;
            case EventKind.Term:
                w.Long(e.Term);
                break;
            default:
                throw new ArgumentException($"event codec: kind {e.Kind} is not a ring event");
        }
        return w.Written;
    }

    /// <summary>Fills <paramref name="e"/> (reset first) from a record; throws <see cref="FormatException"/> if malformed.</summary>
    public static void Decode(ReadOnlySpan<byte> source, ref InputEvent e)
    {
        e.Reset();
        var r = new Reader(source);
        e.Kind = (EventKind)r.Byte();
        e.TimestampUs = r.Long();
        switch (e.Kind)
        {
            case EventKind.InstitutionRequest:
                e.CorrelationId = r.Long();
                e.RequestType = (RequestType)r.Byte();
                e.AmountFen = r.Long();
                r.Text32(ref e.Institution);
                r.Text32(ref e.OrderNo);
                r.Text32(ref e.OriginalOrderNo);
                r.Text32(ref e.BankRef);
                r.Text32(ref e.Account);
                r.Text32(ref e.Currency);
                r.Text64(ref e.Echo);
                e.ClientDeadlineUs = r.Long();
                e.JournaledUs = r.Long();
                break;
            case EventKind.BankResult:
                e.TransactionId = r.Long();
                e.Operation = (BankOperation)r.Byte();
                e.Reply = (BankReply)r.Byte();
                r.Text32(ref e.Reason);
                break;
            case EventKind.Tick:
                break;
            case EventKind.SetEndpointWeights:
                e.CorrelationId = r.Long();
                r.Text32(ref e.BankRef);
                r.Actor(ref e);
                e.EndpointCount = r.Byte();
                if (e.EndpointCount > InputEvent.MaxEndpointsPerBank)
                {
                    throw new FormatException($"event codec: endpoint count {e.EndpointCount} out of range");
                }
                for (int i = 0; i < e.EndpointCount; i++)
                {
                    e.WeightsBps[i] = r.Int();
                }
                e.RampSteps = r.Int();
                e.RampDurationMs = r.Long();
                break;
            case EventKind.SetEndpointState:
                e.CorrelationId = r.Long();
                r.Text32(ref e.BankRef);
                r.Actor(ref e);
                e.EndpointIndex = r.Int();
                e.EndpointState = (EndpointState)r.Byte();
                break;
            case EventKind.CloseBatch:
                e.CorrelationId = r.Long();
                r.Actor(ref e);
                break;
            case EventKind.EndpointReachability:
                r.Text32(ref e.BankRef);
                r.Actor(ref e);
                e.EndpointIndex = r.Int();
                e.Reachable = r.Byte() switch
                {
                    0 => false,
                    1 => true,
                    byte b => throw new FormatException($"event codec: reachability byte {b} is neither 0 nor 1"),
                };
                break;
            case EventKind.Term:
                e.Term = r.Long();
                if (e.Term < 1) throw new FormatException($"event codec: term {e.Term} is not positive");
                break;
            default:
                throw new FormatException($"event codec: unknown event kind {(byte)e.Kind}");
        }
        if (!r.AtEnd)
        {
            throw new FormatException($"event codec: {r.Remaining} trailing bytes after a {e.Kind} event");
        }
    }

    /// <summary>The genesis record: the kind byte, then the configuration as UTF-8 JSON.</summary>
    public static byte[] EncodeGenesis(ReadOnlySpan<byte> configJson)
    {
        var record = new byte[1 + configJson.Length];
        record[0] = (byte)EventKind.Genesis;
        configJson.CopyTo(record.AsSpan(1));
        return record;
    }

    public static bool IsGenesis(ReadOnlySpan<byte> record) => record.Length > 0 && record[0] == (byte)EventKind.Genesis;

    private ref struct Writer(Span<byte> destination)
    {
        private readonly Span<byte> _destination = destination;
        public int Written;

        public void Byte(byte value) => _destination[Written++] = value;

        public void Int(int value)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_destination[Written..], value);
            Written += sizeof(int);
        }

        public void Long(long value)
        {
            BinaryPrimitives.WriteInt64LittleEndian(_destination[Written..], value);
            Written += sizeof(long);
        }

        public void Text(bool overlong, scoped ReadOnlySpan<byte> value)
        {
            if (overlong)
            {
                Byte(TextRules.OverlongMarker);
                return;
            }
            Byte((byte)value.Length);
            value.CopyTo(_destination[Written..]);
            Written += value.Length;
        }

        /// <summary>Who and why, on every operator command and connector report.</summary>
        public void Actor(ref InputEvent e)
        {
            Text(e.Operator.IsOverlong, e.Operator.Span);
            Text(e.Note.IsOverlong, e.Note.Span);
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> source)
    {
        private readonly ReadOnlySpan<byte> _source = source;
        private int _read;

        public readonly bool AtEnd => _read == _source.Length;
        public readonly int Remaining => _source.Length - _read;

        private readonly void Need(int bytes)
        {
            if (_source.Length - _read < bytes)
            {
                throw new FormatException($"event codec: record ends at byte {_source.Length}, needed {bytes} more at {_read}");
            }
        }

        public byte Byte()
        {
            Need(1);
            return _source[_read++];
        }

        public int Int()
        {
            Need(sizeof(int));
            int value = BinaryPrimitives.ReadInt32LittleEndian(_source[_read..]);
            _read += sizeof(int);
            return value;
        }

        public long Long()
        {
            Need(sizeof(long));
            long value = BinaryPrimitives.ReadInt64LittleEndian(_source[_read..]);
            _read += sizeof(long);
            return value;
        }

        private ReadOnlySpan<byte> TextBytes(int capacity, out bool overlong)
        {
            byte length = Byte();
            overlong = length == TextRules.OverlongMarker;
            if (overlong)
            {
                return default;
            }
            if (length > capacity)
            {
                throw new FormatException($"event codec: text of {length} bytes exceeds its capacity {capacity}");
            }
            Need(length);
            ReadOnlySpan<byte> value = _source.Slice(_read, length);
            _read += length;
            return value;
        }

        public void Text32(ref Text32 text)
        {
            ReadOnlySpan<byte> value = TextBytes(Events.Text32.CapacityBytes, out bool overlong);
            if (overlong) text.SetOverlong(); else text.Set(value);
        }

        public void Text64(ref Text64 text)
        {
            ReadOnlySpan<byte> value = TextBytes(Events.Text64.CapacityBytes, out bool overlong);
            if (overlong) text.SetOverlong(); else text.Set(value);
        }

        public void Actor(ref InputEvent e)
        {
            Text32(ref e.Operator);
            Text64(ref e.Note);
        }
    }
}
