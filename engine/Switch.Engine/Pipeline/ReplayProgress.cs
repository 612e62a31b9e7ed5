namespace Switch.Engine.Pipeline;

/// <summary>How far the replay at start is: records visited (genesis included), events applied, the journal address
/// of the last record, and the time since the replay began.</summary>
public readonly record struct ReplayProgress(long Records, long Events, long Address, long ElapsedMs);
