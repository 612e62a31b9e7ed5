namespace Switch.Engine.Business;

/// <summary>A bank and its endpoints; its position is what it is owed (+) or owes (-) in the open batch.</summary>
public sealed class Bank
{
    public required int Index { get; init; }
    public required BankConfig Config { get; init; }
    public required Endpoint[] Endpoints { get; init; }
    /// <summary>The running cut-over ramp, if any (<see cref="WeightRamp.Active"/>).</summary>
    public WeightRamp Ramp { get; } = new();
    public int Code => Config.Code;
    public long PositionFen;
    /// <summary>The open batch's gross movements; their net equals <see cref="PositionFen"/>.</summary>
    public BatchTotals Open;
    /// <summary>Its transactions not final yet (dispatched or unknown), at most <see cref="RulesConfig.MaxUnresolvedPerBank"/>.</summary>
    public int Unresolved;
}
