using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Journal;

namespace Switch.Engine.Pipeline;

/// <summary>Rebuilds the logic from the journal: genesis first, then every event, outputs discarded.</summary>
internal sealed class ReplayVisitor(Func<SwitchConfig, SwitchLogic> createLogic, Action<ReplayProgress>? progress = null,
    int progressIntervalMs = 5_000) : IJournalVisitor
{
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
    }
}
