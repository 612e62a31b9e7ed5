using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Snapshots;
using Switch.Journal;

namespace Switch.Engine.Pipeline;

/// <summary>Rebuilds the logic from the journal: genesis first, then every event, outputs discarded.</summary>
internal sealed class ReplayVisitor(Func<SwitchConfig, SwitchLogic> createLogic, Action<ReplayProgress>? progress = null,
    int progressIntervalMs = 5_000) : IJournalVisitor
{
    /// <summary>Replays the journal after a snapshot into the logic restored from it: the first record visited is the
    /// snapshot's last (at <paramref name="position"/>), already in the state, and is skipped.</summary>
    public static ReplayVisitor After(SwitchLogic restored, SwitchConfig config, SnapshotPosition position,
        Action<ReplayProgress>? progress, int progressIntervalMs)
    {
        var visitor = new ReplayVisitor(_ => throw new InvalidOperationException("replay: after a snapshot, no genesis"), progress, progressIntervalMs)
        {
            Logic = restored,
            GenesisConfig = config,
            MaxCorrelationId = position.MaxCorrelationId,
            LastRecordNo = position.RecordNo,
            LastRecordAddress = position.RecordAddress,
        };
        visitor._skipAddress = position.RecordAddress;
        return visitor;
    }

    private long _skipAddress = -1;
    /// <summary>Called after each record is applied, with its number (tools: a verification compares the state there).</summary>
    public Action<long, SwitchLogic>? AfterRecord { get; init; }
    /// <summary>The last record visited (the genesis is 0): where the live engine's journal positions continue.</summary>
    public long LastRecordNo { get; private set; } = -1;
    public long LastRecordAddress { get; private set; } = -1;
    /// <summary>Records between looks at the clock for the progress report (the clock is read here, never by the logic).</summary>
    private const int ProgressCheckRecords = 256;

    private InputEvent _event;
    private long _records;
    private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();
    private long _lastReportMs;

    public SwitchLogic? Logic { get; private set; }
    public SwitchConfig? GenesisConfig { get; private set; }
    public long EventsReplayed { get; private set; }
    /// <summary>The highest correlation id in the journal: a new life's callers must get ids above it.</summary>
    public long MaxCorrelationId { get; private set; }

    public void OnRecord(long address, ReadOnlySpan<byte> record)
    {
        if (_skipAddress >= 0)
        {
            if (address != _skipAddress) throw new InvalidDataException($"journal: replay after a snapshot began at {address}, not its record's {_skipAddress}");
            _skipAddress = -1;
            return;
        }
        LastRecordNo++;
        LastRecordAddress = address;
        if (++_records % ProgressCheckRecords == 0 && progress is not null)
        {
            long elapsedMs = (long)System.Diagnostics.Stopwatch.GetElapsedTime(_started).TotalMilliseconds;
            if (elapsedMs - _lastReportMs >= progressIntervalMs)
            {
                _lastReportMs = elapsedMs;
                progress(new ReplayProgress(_records, EventsReplayed, address, elapsedMs));
            }
        }
        if (Logic is null)
        {
            if (!EventCodec.IsGenesis(record))
            {
                throw new InvalidDataException($"journal: the first record (at address {address}) is not the genesis record");
            }
            GenesisConfig = SwitchConfig.FromJsonUtf8(record[1..]);
            Logic = createLogic(GenesisConfig);
            AfterRecord?.Invoke(LastRecordNo, Logic);
            return;
        }
        try
        {
            EventCodec.Decode(record, ref _event);
        }
        catch (FormatException e)
        {
            throw new InvalidDataException($"journal: record at address {address} does not decode: {e.Message}", e);
        }
        if (_event.CorrelationId > MaxCorrelationId) MaxCorrelationId = _event.CorrelationId;
        Logic.Apply(ref _event);
        EventsReplayed++;
        AfterRecord?.Invoke(LastRecordNo, Logic);
    }
}
