using System.Runtime.CompilerServices;
using Switch.Engine.Events;
using Switch.Engine.Hashing;

namespace Switch.Engine.Business;

/// <summary>
/// The business logic processor: all switch state, changed by one thread, one event at a time, in journal
/// order. Deterministic: it reads nothing but the event (time comes from the event's timestamp), so replaying
/// the journal into a fresh instance rebuilds exactly the same state and the same outputs.
/// An impossible state is an exception that stops the engine rather than corrupting money.
/// </summary>
public sealed partial class SwitchLogic
{
    private const long MicrosPerMs = 1_000;
    private const long MicrosPerDay = 86_400_000_000;
    /// <summary>Discrepancies kept for inspection; the count goes on beyond it.</summary>
    public const int MaxDiscrepanciesKept = 1024;

    private static readonly Text32 ReasonReversed = Text32.From("REVERSED");
    private static readonly Text32 ReasonNotReceived = Text32.From("BANK_NOT_RECEIVED");
    /// <summary>Who closed a batch the schedule closed (in the batch's files).</summary>
    private static readonly Text32 ReasonSchedule = Text32.From("SCHEDULE");
    /// <summary>The switch's own identities in the audit log, for changes no operator made.</summary>
    private static readonly Text32 ActorSchedule = Text32.From("schedule");
    private static readonly Text32 ActorBreaker = Text32.From("breaker");
    private static readonly Text64 NoteScheduledClose = Note("scheduled close");
    private static readonly Text64 NoteProbing = Note("open time passed: probing");

    private readonly RulesConfig _rules;
    private readonly Institution[] _institutions;
    private readonly Bank[] _banks;
    private readonly Bank?[] _banksByCode = new Bank?[1000];
    /// <summary>Institution code hash → index; codes' hashes are unique (checked by the config validator).</summary>
    private readonly Dictionary<ulong, int> _institutionByCodeHash;
    private readonly TransactionTable _transactions;
    /// <summary>(institution, order number) → transaction id: the idempotency index.</summary>
    private readonly Dictionary<ScopedKey, long> _orders;
    /// <summary>Final transactions that left the table, still found by order number (see <see cref="FindOrder"/>).</summary>
    private readonly ITransactionArchive _archive;
    /// <summary>The copy an archive read lands in; valid until the next <see cref="FindOrder"/>.</summary>
    private Transaction _archived;
    private readonly DailyAccountUsage _dailyUsage;
    /// <summary>Bank deadlines, first in first out (see <see cref="DeadlineQueue"/>).</summary>
    private readonly DeadlineQueue _deadlines;
    /// <summary>Follow-ups (queries, reversals) of unknown transactions, by due time then id: varied delays, few entries.</summary>
    private readonly PriorityQueue<long, (long DueUs, long Id)> _followUps;
    private readonly List<Discrepancy> _discrepancies = new();
    private readonly BatchSchedule _schedule;
    /// <summary>The switch fee account's gross movements in the open batch (its net is <see cref="SwitchFeeFen"/>).</summary>
    private BatchTotals _switchFeeOpen;
    /// <summary>The next scheduled close (UTC µs); 0 until the first tick sets it, long.MaxValue with no schedule.</summary>
    private long _nextScheduledCloseUs;
    /// <summary>The earliest ramp step or breaker half-open due (µs); ticks before it skip the scan of the banks.</summary>
    private long _nextTimedUs = long.MaxValue;
    private IOutputSink _sink;

    /// <param name="archive">Where evicted transactions go; the engine gives one on disk, tools and tests may leave
    /// it to an archive in memory.</param>
    public SwitchLogic(SwitchConfig config, IOutputSink sink, ITransactionArchive? archive = null)
    {
        ConfigValidator.Validate(config);
        Config = config;
        _rules = config.Rules;
        _sink = sink;
        _institutions = new Institution[config.Institutions.Count];
        _institutionByCodeHash = new Dictionary<ulong, int>(config.Institutions.Count);
        for (int i = 0; i < _institutions.Length; i++)
        {
            InstitutionConfig ic = config.Institutions[i];
            byte[] code = System.Text.Encoding.ASCII.GetBytes(ic.Code);
            _institutions[i] = new Institution { Index = i, Config = ic, CodeUtf8 = code, Enabled = ic.Enabled };
            _institutionByCodeHash.Add(StableHash.OfBytes(code), i);
        }
        _banks = new Bank[config.Banks.Count];
        for (int b = 0; b < _banks.Length; b++)
        {
            BankConfig bc = config.Banks[b];
            var endpoints = new Endpoint[bc.Endpoints.Count];
            for (int e = 0; e < endpoints.Length; e++)
            {
                EndpointConfig ec = bc.Endpoints[e];
                endpoints[e] = new Endpoint
                {
                    Name = ec.Name, InFlightCap = ec.InFlightCap, WeightBps = ec.WeightBps, Breaker = new EndpointBreaker(_rules),
                };
            }
            _banks[b] = new Bank { Index = b, Config = bc, Endpoints = endpoints };
            _banksByCode[bc.Code] = _banks[b];
        }
        // Every transaction that is not final counts against its bank's bound, so the parked ones fit in the sum.
        _transactions = new TransactionTable(_rules.TransactionCapacity, checked(_banks.Length * _rules.MaxUnresolvedPerBank));
        _archive = archive ?? new MemoryTransactionArchive();
        _orders = new Dictionary<ScopedKey, long>(_rules.TransactionCapacity);
        _dailyUsage = new DailyAccountUsage(_rules.MaxTrackedAccounts);
        _deadlines = new DeadlineQueue(_rules.TransactionCapacity);
        _followUps = new PriorityQueue<long, (long, long)>(Math.Min(_rules.TransactionCapacity, 4096));
        _schedule = new BatchSchedule(_rules.BatchCloseTimes, _rules.DayUtcOffsetHours);
    }

    public SwitchConfig Config { get; }
    /// <summary>The latest event time seen; never goes backwards even if producers' stamps interleave.</summary>
    public long NowUs { get; private set; }
    public long EventsApplied { get; private set; }
    public long SwitchFeeFen { get; private set; }
    /// <summary>The clearing batch outcomes finalise into now; batches are numbered 1, 2, 3...</summary>
    public long OpenBatchId { get; private set; } = 1;
    /// <summary>When the open batch opened: the previous close, or the first event for batch 1. Like <see cref="NowUs"/>, a
    /// mark of time rather than state: not in the state hash.</summary>
    public long OpenBatchOpenedUs { get; private set; }
    /// <summary>Transactions finalised (succeeded or failed) in the open batch.</summary>
    public long OpenBatchFinalised { get; private set; }
    public BatchTotals SwitchFeeOpen => _switchFeeOpen;
    public long UnmatchedBankResults { get; private set; }
    public long DuplicateBankResults { get; private set; }
    public long DiscrepancyCount { get; private set; }
    /// <summary>The last audit entry's number (entries are numbered 1, 2, 3... in engine order).</summary>
    public long LastAuditNo { get; private set; }
    /// <summary>Reachability reports about an endpoint the configuration does not have (ignored, counted).</summary>
    public long IgnoredReachabilityReports { get; private set; }
    public IReadOnlyList<Discrepancy> Discrepancies => _discrepancies;
    public IReadOnlyList<Institution> Institutions => _institutions;
    public IReadOnlyList<Bank> Banks => _banks;
    public TransactionTable Transactions => _transactions;
    public int PendingTimers => _deadlines.Count + _followUps.Count;

    /// <summary>Swaps where outputs go: replay runs with a discarding sink, then the live engine takes over.</summary>
    public void SetSink(IOutputSink sink) => _sink = sink;

    public void Apply(ref InputEvent e)
    {
        if (e.TimestampUs > NowUs)
        {
            NowUs = e.TimestampUs;
        }
        EventsApplied++;
        if (OpenBatchOpenedUs == 0)
        {
            OpenBatchOpenedUs = NowUs;
        }
        switch (e.Kind)
        {
            case EventKind.InstitutionRequest:
                OnRequest(ref e);
                break;
            case EventKind.BankResult:
                OnBankResult(ref e);
                break;
            case EventKind.Tick:
                OnTick();
                break;
            case EventKind.SetEndpointWeights:
                OnSetEndpointWeights(ref e);
                break;
            case EventKind.SetEndpointState:
                OnSetEndpointState(ref e);
                break;
            case EventKind.CloseBatch:
                OnCloseBatch(ref e);
                break;
            case EventKind.EndpointReachability:
                OnEndpointReachability(ref e);
                break;
            default:
                throw new InvalidOperationException($"logic: event kind {e.Kind} cannot be applied");
        }
        if (_verify)
        {
            VerifyAfter(ref e);
        }
    }

    // ---------------------------------------------------------------- institution requests

    private void OnRequest(ref InputEvent e)
    {
        if (!TryInstitution(ref e, out Institution? inst))
        {
            return;
        }
        if (!CheckCode(ref e, in e.OrderNo, FieldRules.OrderNoMaxBytes, RequestField.OrderNo))
        {
            return;
        }
        if (e.ClientDeadlineUs != 0 && e.JournaledUs >= e.ClientDeadlineUs)
        {
            // The client stopped waiting before the request was durable: it has been told DEADLINE_EXCEEDED, so the
            // request must not execute. Both stamps are in the journaled record: replay decides the same.
            Reject(ref e, RejectCode.DeadlinePassed, RequestField.None);
            return;
        }
        switch (e.RequestType)
        {
            case RequestType.AgreementPayment:
            case RequestType.Payout:
            case RequestType.Refund:
                OnTransfer(ref e, inst!);
                break;
            case RequestType.Query:
                OnQuery(ref e, inst!);
                break;
            default:
                Reject(ref e, RejectCode.UnsupportedRequestType, RequestField.RequestType);
                break;
        }
    }

    private bool TryInstitution(ref InputEvent e, out Institution? inst)
    {
        inst = null;
        if (!CheckCode(ref e, in e.Institution, FieldRules.InstitutionMaxBytes, RequestField.Institution))
        {
            return false;
        }
        ReadOnlySpan<byte> code = e.Institution.Span;
        if (!_institutionByCodeHash.TryGetValue(StableHash.OfBytes(code), out int index)
            || !code.SequenceEqual(_institutions[index].CodeUtf8))
        {
            Reject(ref e, RejectCode.UnknownInstitution, RequestField.Institution);
            return false;
        }
        inst = _institutions[index];
        if (!inst.Enabled)
        {
            Reject(ref e, RejectCode.InstitutionDisabled, RequestField.Institution);
            return false;
        }
        return true;
    }

    private bool CheckCode(ref InputEvent e, in Text32 text, int maxBytes, RequestField field)
    {
        RejectCode code = text.IsEmpty ? RejectCode.MissingField
            : text.IsOverlong || text.Length > maxBytes ? RejectCode.FieldTooLong
            : !FieldRules.IsCode(text.Span, maxBytes) ? RejectCode.InvalidField
            : RejectCode.None;
        if (code != RejectCode.None)
        {
            Reject(ref e, code, field);
            return false;
        }
        return true;
    }

    private void OnQuery(ref InputEvent e, Institution inst)
    {
        ref Transaction tx = ref FindOrder(new ScopedKey(inst.Index, e.OrderNo.Span), out _);
        if (Unsafe.IsNullRef(ref tx))
        {
            Reject(ref e, RejectCode.OrderNotFound, RequestField.OrderNo);
            return;
        }
        EmitAnswer(ref tx, e.CorrelationId, duplicate: false, queryAnswer: true);
    }

    private void OnTransfer(ref InputEvent e, Institution inst)
    {
        if (!CheckTransferFields(ref e, inst, out Bank? bank))
        {
            return;
        }
        var orderKey = new ScopedKey(inst.Index, e.OrderNo.Span);
        ref Transaction existing = ref FindOrder(orderKey, out _);
        if (!Unsafe.IsNullRef(ref existing))
        {
            if (SameContent(ref existing, ref e, bank))
            {
                EmitAnswer(ref existing, e.CorrelationId, duplicate: true);
            }
            else
            {
                Reject(ref e, RejectCode.DuplicateOrderConflict, RequestField.OrderNo);
            }
            return;
        }

        long originalId = 0;
        Text32 payerAccount = e.Account;
        if (e.RequestType == RequestType.Refund)
        {
            // The refund goes back to the original payer, at the original's bank.
            if (!TryRefundable(ref e, inst, out originalId, out int originalBank, out payerAccount))
            {
                return;
            }
            bank = _banks[originalBank];
        }
        if (bank!.Unresolved >= _rules.MaxUnresolvedPerBank)
        {
            // The bank is slow or away: only its own new work waits, everyone else's goes on.
            RejectBankUnresolved(ref e, bank);
            return;
        }

        long nextId = _transactions.LastId + 1;
        int endpointIndex = Routing.PickEndpoint(bank!, nextId);
        if (endpointIndex < 0)
        {
            Reject(ref e, RejectCode.BankUnavailable, RequestField.Bank);
            return;
        }
        Endpoint endpoint = bank!.Endpoints[endpointIndex];
        if (endpoint.InFlight >= endpoint.InFlightCap)
        {
            Reject(ref e, RejectCode.EndpointBusy, RequestField.Bank);
            return;
        }

        long feeFen = inst.FeeFen(e.RequestType, e.AmountFen);
        if (e.RequestType != RequestType.AgreementPayment
            && inst.PositionFen - inst.ReservedDebitFen - (e.AmountFen + feeFen) < -inst.Config.NetDebitCapFen)
        {
            Reject(ref e, RejectCode.NetDebitCapExceeded, RequestField.Amount);
            return;
        }

        int day = DayOf(NowUs);
        if (e.RequestType == RequestType.AgreementPayment)
        {
            ReadOnlySpan<byte> account = e.Account.Span;
            var accountKey = new ScopedKey(bank.Index, account);
            switch (_dailyUsage.TryReserve(accountKey, day, e.AmountFen, bank.Config.DailyAccountLimitFen))
            {
                case DailyAccountUsage.Reservation.OverDailyLimit:
                    Reject(ref e, RejectCode.DailyLimitExceeded, RequestField.Amount);
                    return;
                case DailyAccountUsage.Reservation.TableFull:
                    Reject(ref e, RejectCode.AccountTableFull, RequestField.Account);
                    return;
            }
        }

        // Every check passed: from here nothing can refuse the request.
        ref Transaction slot = ref _transactions.NextSlot;
        if (slot.Id != 0)
        {
            if (slot.IsFinal)
            {
                Evict(ref slot);
            }
            else
            {
                _transactions.ParkNext(); // still unresolved: it waits for its bank in the parked table
            }
        }
        ref Transaction tx = ref _transactions.Issue();
        if (tx.Id != nextId) throw new InvalidOperationException("logic: issued id differs from the routed id");
        tx.Type = e.RequestType;
        tx.InstitutionIndex = inst.Index;
        tx.BankIndex = bank.Index;
        tx.EndpointIndex = endpointIndex;
        tx.AmountFen = e.AmountFen;
        tx.FeeFen = feeFen;
        tx.OriginalId = originalId;
        tx.LimitDay = day;
        tx.CorrelationId = e.CorrelationId;
        tx.ReceivedUs = NowUs;
        tx.DispatchedUs = NowUs;
        tx.OrderNo = e.OrderNo;
        tx.Account = payerAccount;
        if (tx.Type == RequestType.Refund) tx.OriginalOrderNo = e.OriginalOrderNo;
        tx.Echo = e.Echo;
        tx.Status = TransactionStatus.Dispatched;
        _orders.Add(orderKey, tx.Id);
        bank.Unresolved++;

        if (tx.Type != RequestType.AgreementPayment)
        {
            inst.ReservedDebitFen += tx.AmountFen + tx.FeeFen;
        }
        if (tx.Type == RequestType.Refund)
        {
            AdjustOriginal(ref tx, reservedDeltaFen: tx.AmountFen, refundedDeltaFen: 0);
        }
        endpoint.InFlight++;
        if (endpoint.InFlight > endpoint.InFlightCap) throw new InvalidOperationException($"logic: endpoint {endpoint.Name} in flight above its cap");
        endpoint.DispatchedCount++;
        ArmDeadline(ref tx, BankDeadlineUs(ref tx));
        EmitBankRequest(ref tx, tx.IsDebit ? BankOperation.Debit : BankOperation.Credit, endpointIndex, attempt: 1);
    }

    private bool CheckTransferFields(ref InputEvent e, Institution inst, out Bank? bank)
    {
        bank = null;
        if (e.Currency.IsEmpty) return Reject(ref e, RejectCode.MissingField, RequestField.Currency);
        if (e.Currency.IsOverlong) return Reject(ref e, RejectCode.FieldTooLong, RequestField.Currency);
        if (!e.Currency.Equals(FieldRules.Cny)) return Reject(ref e, RejectCode.UnsupportedCurrency, RequestField.Currency);
        if (e.AmountFen <= 0) return Reject(ref e, RejectCode.InvalidAmount, RequestField.Amount);
        if (e.AmountFen > inst.Config.SingleLimitFen) return Reject(ref e, RejectCode.AmountOverLimit, RequestField.Amount);
        if (e.Echo.IsOverlong) return Reject(ref e, RejectCode.FieldTooLong, RequestField.Echo);
        if (!FieldRules.IsEchoText(e.Echo.Span)) return Reject(ref e, RejectCode.InvalidField, RequestField.Echo);
        if (e.RequestType == RequestType.Refund)
        {
            // The refund goes back to the original payer: bank and account come from the original payment.
            return CheckCode(ref e, in e.OriginalOrderNo, FieldRules.OrderNoMaxBytes, RequestField.OriginalOrderNo);
        }
        if (e.BankRef.IsEmpty) return Reject(ref e, RejectCode.MissingField, RequestField.Bank);
        if (e.BankRef.IsOverlong) return Reject(ref e, RejectCode.FieldTooLong, RequestField.Bank);
        int bankCode = FieldRules.NormaliseBankCode(e.BankRef.Span);
        if (bankCode < 0) return Reject(ref e, RejectCode.InvalidField, RequestField.Bank);
        bank = _banksByCode[bankCode];
        if (bank is null) return Reject(ref e, RejectCode.UnknownBank, RequestField.Bank);
        return CheckCode(ref e, in e.Account, FieldRules.AccountMaxBytes, RequestField.Account);
    }

    private bool TryRefundable(ref InputEvent e, Institution inst, out long originalId, out int originalBank, out Text32 payerAccount)
    {
        originalId = 0;
        originalBank = -1;
        payerAccount = default;
        ref Transaction original = ref FindOrder(new ScopedKey(inst.Index, e.OriginalOrderNo.Span), out _);
        if (Unsafe.IsNullRef(ref original))
        {
            return Reject(ref e, RejectCode.OriginalNotFound, RequestField.OriginalOrderNo);
        }
        if (original.Type != RequestType.AgreementPayment || original.Status != TransactionStatus.Succeeded)
        {
            return Reject(ref e, RejectCode.OriginalNotRefundable, RequestField.OriginalOrderNo);
        }
        if (original.RefundedFen >= original.AmountFen)
        {
            return Reject(ref e, RejectCode.OriginalFullyRefunded, RequestField.OriginalOrderNo);
        }
        if (original.RefundedFen + original.RefundReservedFen + e.AmountFen > original.AmountFen)
        {
            return Reject(ref e, RejectCode.RefundExceedsOriginal, RequestField.Amount);
        }
        originalId = original.Id;
        originalBank = original.BankIndex;
        payerAccount = original.Account;
        return true;
    }

    /// <summary>A repeat of an order is the same request when everything that moves money matches.</summary>
    private bool SameContent(ref Transaction tx, ref InputEvent e, Bank? bank)
    {
        if (tx.Type != e.RequestType || tx.AmountFen != e.AmountFen)
        {
            return false;
        }
        if (tx.Type == RequestType.Refund)
        {
            return tx.OriginalOrderNo.Equals(e.OriginalOrderNo);
        }
        return bank is not null && tx.BankIndex == bank.Index && tx.Account.Equals(e.Account);
    }

    /// <summary>
    /// The oldest retained transaction gives its slot to a new one and moves to the archive, where its order number
    /// is still found; the archive may forget what is past the switch's memory of orders.
    /// </summary>
    private void Evict(ref Transaction old)
    {
        if (!old.IsFinal) throw new InvalidOperationException($"logic: evicting {old.Id} which is not final");
        var order = new ScopedKey(old.InstitutionIndex, old.OrderNo.Span);
        bool removed = _orders.Remove(order);
        if (!removed) throw new InvalidOperationException($"logic: evicted {old.Id} had no order index entry");
        _archive.Put(order, old);
        _archive.ForgetBelow(OldestRememberedId);
    }

    /// <summary>Orders of transactions older than this are forgotten: the idempotency window.</summary>
    private long OldestRememberedId => _transactions.LastId + 1 - _rules.OrderMemoryTransactions;

    /// <summary>
    /// An order the switch still remembers: retained (a ref to its slot), else archived (a ref to a copy; write a
    /// change back with <see cref="ITransactionArchive.Put"/>), else a null ref. One lookup for every path that names
    /// an order — repeats, queries, refunds — so none of them can execute or answer past what another one sees.
    /// </summary>
    private ref Transaction FindOrder(in ScopedKey order, out bool archived)
    {
        archived = false;
        if (_orders.TryGetValue(order, out long id))
        {
            return ref _transactions.ById(id);
        }
        if (_archive.TryGet(order, out _archived) && _archived.Id >= OldestRememberedId)
        {
            if (!_archived.IsFinal || _archived.Id >= _transactions.OldestRetainedId)
            {
                throw new InvalidOperationException($"logic: archived {_archived.Id} is not final or is still retained");
            }
            archived = true;
            return ref _archived;
        }
        return ref Unsafe.NullRef<Transaction>();
    }

    /// <summary>A refund's reservation or result, applied to its original payment wherever the original now is.</summary>
    private void AdjustOriginal(ref Transaction refund, long reservedDeltaFen, long refundedDeltaFen)
    {
        var order = new ScopedKey(refund.InstitutionIndex, refund.OriginalOrderNo.Span);
        ref Transaction original = ref FindOrder(order, out bool archived);
        if (Unsafe.IsNullRef(ref original))
        {
            return; // past the switch's memory while the refund was in flight: nothing left to keep in step
        }
        if (original.Id != refund.OriginalId) throw new InvalidOperationException($"logic: refund {refund.Id} names {refund.OriginalId}, found {original.Id}");
        original.RefundReservedFen += reservedDeltaFen;
        original.RefundedFen += refundedDeltaFen;
        if (original.RefundReservedFen < 0 || original.RefundedFen > original.AmountFen)
        {
            throw new InvalidOperationException($"logic: refunds of {original.Id} exceed it");
        }
        if (archived)
        {
            _archive.Update(order, original);
        }
    }

    // ---------------------------------------------------------------- bank results

    private void OnBankResult(ref InputEvent e)
    {
        if (!_transactions.TryFind(e.TransactionId, out int index))
        {
            UnmatchedBankResults++;
            return;
        }
        ref Transaction tx = ref _transactions[index];
        bool expected = e.Operation switch
        {
            BankOperation.Debit => tx.IsDebit && e.Reply is BankReply.Succeeded or BankReply.Failed,
            BankOperation.Credit => !tx.IsDebit && e.Reply is BankReply.Succeeded or BankReply.Failed,
            BankOperation.Query => e.Reply is BankReply.Succeeded or BankReply.Failed or BankReply.NotFound or BankReply.Pending,
            BankOperation.Reverse => tx.IsDebit && e.Reply is BankReply.Succeeded or BankReply.Failed,
            _ => false,
        };
        if (!expected || (tx.Status == TransactionStatus.Dispatched && e.Reply is BankReply.NotFound or BankReply.Pending))
        {
            // (The second: an answer to a query never sent; queries leave only once a transaction is unknown.)
            UnmatchedBankResults++;
            return;
        }
        if (tx.Status == TransactionStatus.Dispatched)
        {
            LeaveDispatched(ref tx);
            if (e.Operation is BankOperation.Debit or BankOperation.Credit)
            {
                // The first answer within the deadline: a call for the breaker, failed only if the endpoint failed
                // (a business decline such as INSUFFICIENT_FUNDS says nothing about the endpoint).
                RecordCall(_banks[tx.BankIndex], tx.EndpointIndex,
                    failed: e.Reply == BankReply.Failed && EndpointBreaker.IsSystemFailure(e.Reason.Span));
            }
        }
        if (e.Operation == BankOperation.Reverse)
        {
            if (e.Reply == BankReply.Succeeded)
            {
                Resolve(ref tx, TransactionStatus.Failed, in ReasonReversed);
            }
            // A refused reversal is retried by the follow-up timer; the outcome stays unknown meanwhile.
            return;
        }
        switch (e.Reply)
        {
            case BankReply.Succeeded:
                if (tx.Reversing && !tx.IsFinal)
                {
                    // A reversal is under way: only its answer decides, or the debit could be undone after success.
                    return;
                }
                Resolve(ref tx, TransactionStatus.Succeeded, in e.Reason);
                break;
            case BankReply.Failed:
                Resolve(ref tx, TransactionStatus.Failed, in e.Reason);
                break;
            case BankReply.NotFound:
                // "No record" is final only once the bank can no longer execute the request: banks refuse work past the
                // deadline they were sent (BankDeadlineUs, decided here, sent as is), and every query leaves once the
                // transaction is unknown, at or after that deadline. (A reversal the bank acknowledged bars the id too;
                // that answer made the transaction final already.) Otherwise it stays unknown and is asked again.
                if (tx.Status == TransactionStatus.Unknown && tx.UnknownSinceUs >= BankDeadlineUs(ref tx))
                {
                    Resolve(ref tx, TransactionStatus.Failed, in ReasonNotReceived);
                }
                break;
            case BankReply.Pending:
                break; // the next follow-up asks again
        }
    }

    private void LeaveDispatched(ref Transaction tx)
    {
        Endpoint endpoint = _banks[tx.BankIndex].Endpoints[tx.EndpointIndex];
        endpoint.InFlight--;
        if (endpoint.InFlight < 0) throw new InvalidOperationException($"logic: endpoint {endpoint.Name} in-flight below zero");
    }

    private void Resolve(ref Transaction tx, TransactionStatus outcome, in Text32 reason)
    {
        if (tx.IsFinal)
        {
            if (tx.Status == outcome)
            {
                DuplicateBankResults++;
            }
            else
            {
                // A final outcome never changes: keep the contradiction for the operators, apply nothing.
                DiscrepancyCount++;
                if (_discrepancies.Count < MaxDiscrepanciesKept)
                {
                    _discrepancies.Add(new Discrepancy(tx.Id, tx.Status, outcome, reason.ToString(), NowUs));
                }
            }
            return;
        }
        Finalise(ref tx, outcome, in reason);
    }

    private void Finalise(ref Transaction tx, TransactionStatus outcome, in Text32 reason)
    {
        if (outcome is not (TransactionStatus.Succeeded or TransactionStatus.Failed)) throw new ArgumentOutOfRangeException(nameof(outcome));
        if (tx.IsFinal) throw new InvalidOperationException($"logic: {tx.Id} finalised twice");
        Institution inst = _institutions[tx.InstitutionIndex];
        Bank bank = _banks[tx.BankIndex];
        Endpoint endpoint = bank.Endpoints[tx.EndpointIndex];
        bool succeeded = outcome == TransactionStatus.Succeeded;

        // Release what was reserved before the bank call.
        if (tx.Type == RequestType.AgreementPayment)
        {
            if (!succeeded)
            {
                _dailyUsage.Release(new ScopedKey(bank.Index, tx.Account.Span), tx.LimitDay, tx.AmountFen);
            }
        }
        else
        {
            inst.ReservedDebitFen -= tx.AmountFen + tx.FeeFen;
            if (inst.ReservedDebitFen < 0) throw new InvalidOperationException($"logic: {inst.Config.Code} reserved debit below zero");
        }
        if (tx.Type == RequestType.Refund)
        {
            AdjustOriginal(ref tx, reservedDeltaFen: -tx.AmountFen, refundedDeltaFen: succeeded ? tx.AmountFen : 0);
        }

        if (succeeded)
        {
            Post(tx.Type, inst, bank, tx.AmountFen, tx.FeeFen);
            endpoint.SucceededCount++;
        }
        else
        {
            endpoint.FailedCount++;
        }
        tx.Status = outcome;
        tx.Reason = reason;
        tx.FinalUs = NowUs;
        tx.TimerDueUs = 0;
        tx.FeedNo = ++inst.FeedCount;
        tx.BatchId = OpenBatchId;
        if (_verify) VerifyFeedNumber(ref tx);
        OpenBatchFinalised++;
        EmitFeed(ref tx);
        // Every request gets exactly one answer: one that was already answered "unknown" at its deadline learns
        // its final outcome from the institution's outcome feed (or a query), not from a second answer.
        if (tx.UnknownSinceUs == 0)
        {
            EmitAnswer(ref tx, tx.CorrelationId, duplicate: false);
        }
        bank.Unresolved--;
        if (bank.Unresolved < 0) throw new InvalidOperationException($"logic: bank {bank.Code} unresolved below zero");
        // A parked transaction waited only for its outcome: now final, it goes to the archive like any evicted one.
        if (_transactions.TryFind(tx.Id, out int index) && _transactions.IsParked(index))
        {
            Evict(ref tx);
            _transactions.Unpark(index);
        }
    }

    /// <summary>Moves a successful transaction's money in the open clearing batch. Each posting sums to zero.</summary>
    private void Post(RequestType type, Institution inst, Bank bank, long amountFen, long feeFen)
    {
        long bankDelta, instDelta;
        if (type == RequestType.AgreementPayment)
        {
            // The payer's bank debited the user: it owes the amount; the reserve gains it less the fee.
            bankDelta = -amountFen;
            instDelta = amountFen - feeFen;
            bank.Open.Post(debitFen: amountFen, creditFen: 0, feeFen: 0);
            inst.Open.Post(debitFen: feeFen, creditFen: amountFen, feeFen: feeFen);
        }
        else
        {
            // The payee's bank credited the user: it is owed the amount; the reserve pays it plus the fee.
            bankDelta = amountFen;
            instDelta = -(amountFen + feeFen);
            bank.Open.Post(debitFen: 0, creditFen: amountFen, feeFen: 0);
            inst.Open.Post(debitFen: amountFen + feeFen, creditFen: 0, feeFen: feeFen);
        }
        _switchFeeOpen.Post(debitFen: 0, creditFen: feeFen, feeFen: feeFen);
        if (bankDelta + instDelta + feeFen != 0) throw new InvalidOperationException("logic: a posting does not sum to zero");
        bank.PositionFen = checked(bank.PositionFen + bankDelta);
        inst.PositionFen = checked(inst.PositionFen + instDelta);
        SwitchFeeFen = checked(SwitchFeeFen + feeFen);
    }

    // ---------------------------------------------------------------- time

    private void OnTick()
    {
        // The schedule is part of applying the tick: same ticks in the journal, same closes on replay.
        if (_nextScheduledCloseUs == 0)
        {
            _nextScheduledCloseUs = _schedule.NextCloseUs(NowUs);
        }
        else if (NowUs >= _nextScheduledCloseUs)
        {
            // Closes missed while no ticks came (the switch was down) collapse into this one.
            CloseBatch(correlationId: 0, in ReasonSchedule, in ActorSchedule, in NoteScheduledClose);
            _nextScheduledCloseUs = _schedule.NextCloseUs(NowUs);
        }
        if (NowUs >= _nextTimedUs)
        {
            RunTimed();
        }
        while (_deadlines.TryDequeueDue(NowUs, out long id, out long dueUs))
        {
            if (TryTakeTimer(id, dueUs, out int index))
            {
                ref Transaction tx = ref _transactions[index];
                if (tx.Status != TransactionStatus.Dispatched) throw new InvalidOperationException($"logic: deadline of {id} in {tx.Status}");
                DeadlinePassed(ref tx);
            }
        }
        while (_followUps.TryPeek(out long id, out (long DueUs, long Id) due) && due.DueUs <= NowUs)
        {
            _followUps.Dequeue();
            if (TryTakeTimer(id, due.DueUs, out int index))
            {
                ref Transaction tx = ref _transactions[index];
                // A deadline that overflowed the deadline queue waits here (see ArmDeadline).
                if (tx.Status == TransactionStatus.Dispatched)
                {
                    DeadlinePassed(ref tx);
                }
                else
                {
                    FollowUp(ref tx);
                }
            }
        }
    }

    /// <summary>No bank answer by the deadline: the outcome is unknown until a query settles it.</summary>
    private void DeadlinePassed(ref Transaction tx)
    {
        LeaveDispatched(ref tx);
        _banks[tx.BankIndex].Endpoints[tx.EndpointIndex].TimedOutCount++;
        RecordCall(_banks[tx.BankIndex], tx.EndpointIndex, failed: true);
        tx.Status = TransactionStatus.Unknown;
        tx.UnknownSinceUs = NowUs;
        EmitAnswer(ref tx, tx.CorrelationId, duplicate: false);
        ArmFollowUp(ref tx, NowUs + _rules.QueryBackoffInitialMs * MicrosPerMs);
    }

    /// <summary>True when the timer is still the transaction's live one (not answered, not re-armed since).</summary>
    private bool TryTakeTimer(long id, long dueUs, out int index)
    {
        if (!_transactions.TryFind(id, out index))
        {
            return false;
        }
        ref Transaction tx = ref _transactions[index];
        if (tx.IsFinal || tx.TimerDueUs != dueUs)
        {
            return false;
        }
        tx.TimerDueUs = 0;
        return true;
    }

    /// <summary>Asks the bank about an unknown transaction, or reverses a debit unknown for too long; then re-arms.</summary>
    private void FollowUp(ref Transaction tx)
    {
        if (tx.Status != TransactionStatus.Unknown) throw new InvalidOperationException($"logic: follow-up of {tx.Id} in {tx.Status}");
        if (tx.IsDebit && NowUs - tx.UnknownSinceUs >= _rules.ReverseAfterMs * MicrosPerMs)
        {
            tx.Reversing = true;
        }
        Bank bank = _banks[tx.BankIndex];
        int endpointIndex = Routing.PickFollowUpEndpoint(bank, tx.EndpointIndex, tx.FollowUps + 1);
        tx.FollowUps++;
        if (endpointIndex >= 0)
        {
            EmitBankRequest(ref tx, tx.Reversing ? BankOperation.Reverse : BankOperation.Query, endpointIndex, tx.FollowUps);
        }
        // Bounded exponential back-off: initial × 2^n, capped.
        int shift = Math.Min(tx.FollowUps, 20);
        long delayMs = Math.Min((long)_rules.QueryBackoffInitialMs << shift, _rules.QueryBackoffMaxMs);
        ArmFollowUp(ref tx, NowUs + delayMs * MicrosPerMs);
    }

    /// <summary>The deadline the bank is sent with the first request, and the moment the logic calls the outcome unknown:
    /// one instant from the event stamp, whenever the request actually leaves.</summary>
    private long BankDeadlineUs(ref Transaction tx) => tx.DispatchedUs + _rules.BankTimeoutMs * MicrosPerMs;

    private void ArmDeadline(ref Transaction tx, long dueUs)
    {
        // Full only when a whole table of dispatches came within one deadline (or with no tick): the oldest entry is
        // then mostly stale (answered, evicted) and dropped. If it is still its transaction's live deadline (one
        // parked while its bank is slow), it moves to the follow-up queue, whose timers fire the same way.
        if (_deadlines.Count == _deadlines.Capacity)
        {
            _deadlines.TryPeek(out long oldestId, out long oldestDueUs);
            _deadlines.DropHead();
            if (_transactions.TryFind(oldestId, out int oldestIndex) && !_transactions[oldestIndex].IsFinal
                && _transactions[oldestIndex].TimerDueUs == oldestDueUs)
            {
                _followUps.Enqueue(oldestId, (oldestDueUs, oldestId));
            }
        }
        tx.TimerDueUs = dueUs;
        _deadlines.Enqueue(tx.Id, dueUs);
    }

    private void ArmFollowUp(ref Transaction tx, long dueUs)
    {
        tx.TimerDueUs = dueUs;
        _followUps.Enqueue(tx.Id, (dueUs, tx.Id));
    }

    /// <summary>The calendar day (in the configured zone) an instant falls on, for daily limits.</summary>
    private int DayOf(long timeUs)
    {
        long localUs = timeUs + _rules.DayUtcOffsetHours * 3_600_000_000L;
        return (int)(localUs >= 0 ? localUs / MicrosPerDay : (localUs - MicrosPerDay + 1) / MicrosPerDay);
    }

    // ---------------------------------------------------------------- operator commands

    private void OnSetEndpointWeights(ref InputEvent e)
    {
        if (!CheckActor(ref e, noteRequired: true) || !TryCommandBank(ref e, out Bank? bank))
        {
            return;
        }
        if (e.EndpointCount != bank!.Endpoints.Length)
        {
            RejectCommand(ref e, RejectCode.InvalidWeights, RequestField.Weights);
            return;
        }
        long sumBps = 0;
        for (int i = 0; i < e.EndpointCount; i++)
        {
            int w = e.WeightsBps[i];
            if (w is < 0 or > Routing.TotalWeightBps)
            {
                RejectCommand(ref e, RejectCode.InvalidWeights, RequestField.Weights);
                return;
            }
            sumBps += w;
        }
        if (sumBps != Routing.TotalWeightBps)
        {
            RejectCommand(ref e, RejectCode.InvalidWeights, RequestField.Weights);
            return;
        }
        if (!WeightRamp.IsValid(e.RampSteps, e.RampDurationMs))
        {
            RejectCommand(ref e, RejectCode.InvalidField, RequestField.Ramp);
            return;
        }
        // Accepted: a running ramp stops where it is, then the new change applies.
        if (bank.Ramp.Active)
        {
            bank.Ramp.Cancel();
            EmitAudit(AuditKind.RampCancelled, bank, -1, in e.Operator, in e.Note);
        }
        long auditNo;
        if (e.RampSteps == 0)
        {
            for (int i = 0; i < e.EndpointCount; i++)
            {
                bank.Endpoints[i].WeightBps = e.WeightsBps[i];
            }
            auditNo = EmitAudit(AuditKind.Weights, bank, -1, in e.Operator, in e.Note);
        }
        else
        {
            EndpointWeights fromBps = CurrentWeights(bank);
            bank.Ramp.Start(in fromBps, in e.WeightsBps, e.RampSteps, e.RampDurationMs, NowUs, in e.Operator, in e.Note);
            _nextTimedUs = Math.Min(_nextTimedUs, bank.Ramp.NextStepUs);
            auditNo = EmitAudit(AuditKind.RampStarted, bank, -1, in e.Operator, in e.Note);
        }
        AcceptCommand(ref e, bank, auditNo);
    }

    private void OnSetEndpointState(ref InputEvent e)
    {
        if (!CheckActor(ref e, noteRequired: true) || !TryCommandBank(ref e, out Bank? bank))
        {
            return;
        }
        if (e.EndpointIndex < 0 || e.EndpointIndex >= bank!.Endpoints.Length)
        {
            RejectCommand(ref e, RejectCode.UnknownEndpoint, RequestField.Endpoint);
            return;
        }
        if (e.EndpointState is not (EndpointState.Up or EndpointState.Draining or EndpointState.Down))
        {
            RejectCommand(ref e, RejectCode.InvalidField, RequestField.EndpointState);
            return;
        }
        bank.Endpoints[e.EndpointIndex].State = e.EndpointState;
        long auditNo = EmitAudit(AuditKind.State, bank, e.EndpointIndex, in e.Operator, in e.Note);
        AcceptCommand(ref e, bank, auditNo);
    }

    /// <summary>The connector's view, kept apart from the operator's state. Only changes make an audit entry.</summary>
    private void OnEndpointReachability(ref InputEvent e)
    {
        int code = e.BankRef.IsOverlong ? -1 : FieldRules.NormaliseBankCode(e.BankRef.Span);
        Bank? bank = code < 0 ? null : _banksByCode[code];
        if (bank is null || e.EndpointIndex < 0 || e.EndpointIndex >= bank.Endpoints.Length)
        {
            // The connector is built from the same configuration; a stray report must not stop the engine.
            IgnoredReachabilityReports++;
            return;
        }
        Endpoint endpoint = bank.Endpoints[e.EndpointIndex];
        if (endpoint.Reachable == e.Reachable)
        {
            return;
        }
        endpoint.Reachable = e.Reachable;
        EmitAudit(AuditKind.Reachability, bank, e.EndpointIndex, in e.Operator, in e.Note);
    }

    /// <summary>Who and why, on every operator command: the operator a printable code, the note printable UTF-8.</summary>
    private bool CheckActor(ref InputEvent e, bool noteRequired)
    {
        RejectCode code = e.Operator.IsEmpty ? RejectCode.MissingField
            : e.Operator.IsOverlong ? RejectCode.FieldTooLong
            : !FieldRules.IsCode(e.Operator.Span, Text32.CapacityBytes) ? RejectCode.InvalidField
            : RejectCode.None;
        if (code != RejectCode.None)
        {
            RejectCommand(ref e, code, RequestField.Operator);
            return false;
        }
        code = e.Note.IsEmpty ? (noteRequired ? RejectCode.MissingField : RejectCode.None)
            : e.Note.IsOverlong ? RejectCode.FieldTooLong
            : !FieldRules.IsEchoText(e.Note.Span) ? RejectCode.InvalidField
            : RejectCode.None;
        if (code != RejectCode.None)
        {
            RejectCommand(ref e, code, RequestField.Note);
            return false;
        }
        return true;
    }

    // ---------------------------------------------------------------- ramps and breakers

    /// <summary>A call's outcome for the endpoint's breaker; a transition makes an audit entry.</summary>
    private void RecordCall(Bank bank, int endpointIndex, bool failed)
    {
        if (bank.Endpoints[endpointIndex].Breaker.Record(NowUs, failed))
        {
            BreakerChanged(bank, endpointIndex);
        }
    }

    private void BreakerChanged(Bank bank, int endpointIndex)
    {
        EndpointBreaker breaker = bank.Endpoints[endpointIndex].Breaker;
        Span<byte> noteUtf8 = stackalloc byte[Text64.CapacityBytes];
        int written;
        AuditKind kind;
        switch (breaker.State)
        {
            case BreakerState.Open:
                kind = AuditKind.BreakerOpen;
                System.Text.Unicode.Utf8.TryWrite(noteUtf8, $"{breaker.TripFailures} failed or timed out of {breaker.TripCalls} calls", out written);
                _nextTimedUs = Math.Min(_nextTimedUs, breaker.OpenUntilUs);
                break;
            case BreakerState.HalfOpen:
                kind = AuditKind.BreakerHalfOpen;
                NoteProbing.Span.CopyTo(noteUtf8);
                written = NoteProbing.Length;
                break;
            default:
                kind = AuditKind.BreakerClosed;
                System.Text.Unicode.Utf8.TryWrite(noteUtf8, $"{_rules.BreakerProbeSuccesses} probes answered in a row", out written);
                break;
        }
        var note = new Text64();
        note.Set(noteUtf8[..written]);
        EmitAudit(kind, bank, endpointIndex, in ActorBreaker, in note);
    }

    /// <summary>Applies ramp steps and half-opens breakers that are due, then finds the next time anything is due.
    /// Runs only on a tick at or past <see cref="_nextTimedUs"/>: O(endpoints), once per step or opening.</summary>
    private void RunTimed()
    {
        long nextUs = long.MaxValue;
        Span<int> weightsBps = stackalloc int[InputEvent.MaxEndpointsPerBank];
        foreach (Bank bank in _banks)
        {
            WeightRamp ramp = bank.Ramp;
            // Every step due is applied and audited in order (at most MaxSteps), even after a long gap.
            while (ramp.Active && NowUs >= ramp.NextStepUs)
            {
                bool done = ramp.Step(bank.Endpoints.Length, weightsBps);
                for (int i = 0; i < bank.Endpoints.Length; i++)
                {
                    bank.Endpoints[i].WeightBps = weightsBps[i];
                }
                EmitAudit(done ? AuditKind.RampDone : AuditKind.RampStep, bank, -1, in ramp.Operator, in ramp.Note);
            }
            if (ramp.Active)
            {
                nextUs = Math.Min(nextUs, ramp.NextStepUs);
            }
            for (int i = 0; i < bank.Endpoints.Length; i++)
            {
                EndpointBreaker breaker = bank.Endpoints[i].Breaker;
                if (breaker.Advance(NowUs))
                {
                    BreakerChanged(bank, i);
                }
                if (breaker.State == BreakerState.Open)
                {
                    nextUs = Math.Min(nextUs, breaker.OpenUntilUs);
                }
            }
        }
        _nextTimedUs = nextUs;
    }

    private static EndpointWeights CurrentWeights(Bank bank)
    {
        var weights = new EndpointWeights();
        for (int i = 0; i < bank.Endpoints.Length; i++)
        {
            weights[i] = bank.Endpoints[i].WeightBps;
        }
        return weights;
    }

    private static Text64 Note(string value)
    {
        var note = new Text64();
        note.Set(value);
        return note;
    }

    private bool TryCommandBank(ref InputEvent e, out Bank? bank)
    {
        bank = null;
        int code = e.BankRef.IsOverlong ? -1 : FieldRules.NormaliseBankCode(e.BankRef.Span);
        if (code < 0 || (bank = _banksByCode[code]) is null)
        {
            RejectCommand(ref e, RejectCode.UnknownBank, RequestField.Bank);
            return false;
        }
        return true;
    }

    // ---------------------------------------------------------------- clearing batches

    private void OnCloseBatch(ref InputEvent e)
    {
        // The operator's identity goes into the batch record: required, printable, bounded.
        // The note is optional here (a close needs no reason beyond the operator's); checked when given.
        if (!CheckActor(ref e, noteRequired: false))
        {
            return;
        }
        long closedId = OpenBatchId;
        long auditNo = CloseBatch(e.CorrelationId, in e.Operator, in e.Operator, in e.Note);
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.CommandAnswer;
        o.TimestampUs = NowUs;
        o.CorrelationId = e.CorrelationId;
        o.BatchId = closedId;
        o.AuditNo = auditNo;
        _sink.End();
    }

    /// <summary>
    /// Nets the open batch, hands its positions out (one output per participant, then the marker) and opens the
    /// next. Checked before anything is emitted: if the positions do not sum to zero the engine stops, and no
    /// output of this close exists. Cost: one output per participant (at most 5,001), never per transaction.
    /// </summary>
    private long CloseBatch(long correlationId, in Text32 closedBy, in Text32 auditOperator, in Text64 note)
    {
        long sumFen = _switchFeeOpen.NetFen;
        if (_switchFeeOpen.NetFen != SwitchFeeFen) throw new InvalidOperationException("clearing: switch fee totals differ from its position");
        foreach (Institution inst in _institutions)
        {
            if (inst.Open.NetFen != inst.PositionFen) throw new InvalidOperationException($"clearing: {inst.Config.Code} totals differ from its position");
            sumFen = checked(sumFen + inst.Open.NetFen);
        }
        foreach (Bank bank in _banks)
        {
            if (bank.Open.NetFen != bank.PositionFen) throw new InvalidOperationException($"clearing: bank {bank.Code} totals differ from its position");
            sumFen = checked(sumFen + bank.Open.NetFen);
        }
        if (sumFen != 0) throw new InvalidOperationException($"clearing: batch {OpenBatchId} positions sum to {sumFen} fen, not zero");

        long batchId = OpenBatchId;
        foreach (Bank bank in _banks)
        {
            ref OutputEvent o = ref BeginPosition(batchId, ParticipantKind.Bank, in bank.Open);
            o.BankIndex = bank.Index;
            o.BankCode = bank.Code;
            _sink.End();
            bank.Open = default;
            bank.PositionFen = 0;
        }
        foreach (Institution inst in _institutions)
        {
            ref OutputEvent o = ref BeginPosition(batchId, ParticipantKind.Institution, in inst.Open);
            o.InstitutionIndex = inst.Index;
            o.Institution.Set(inst.CodeUtf8);
            _sink.End();
            inst.Open = default;
            // The net debit cap is about the open batch: the new one starts from zero. Reservations of payouts
            // still at the bank stay: they post into the new batch when final.
            inst.PositionFen = 0;
        }
        {
            ref OutputEvent o = ref BeginPosition(batchId, ParticipantKind.SwitchFee, in _switchFeeOpen);
            _sink.End();
            _switchFeeOpen = default;
            SwitchFeeFen = 0;
        }
        ref OutputEvent closed = ref _sink.Begin();
        closed.Kind = OutputKind.BatchClosed;
        closed.TimestampUs = NowUs;
        closed.CorrelationId = correlationId;
        closed.BatchId = batchId;
        closed.ReceivedUs = OpenBatchOpenedUs;
        closed.FinalUs = NowUs;
        closed.Count = OpenBatchFinalised;
        closed.ParticipantCount = _banks.Length + _institutions.Length + 1;
        closed.Reason = closedBy;
        _sink.End();

        long auditNo = EmitAudit(AuditKind.BatchClosed, null, -1, in auditOperator, in note, batchId);
        OpenBatchId++;
        OpenBatchOpenedUs = NowUs;
        OpenBatchFinalised = 0;
        return auditNo;
    }

    private ref OutputEvent BeginPosition(long batchId, ParticipantKind participant, in BatchTotals totals)
    {
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.BatchPosition;
        o.TimestampUs = NowUs;
        o.BatchId = batchId;
        o.Participant = participant;
        o.DebitsFen = totals.DebitsFen;
        o.CreditsFen = totals.CreditsFen;
        o.FeeFen = totals.FeesFen;
        o.NetFen = totals.NetFen;
        o.Count = totals.Count;
        return ref o;
    }

    // ---------------------------------------------------------------- outputs

    private bool Reject(ref InputEvent e, RejectCode code, RequestField field)
    {
        BeginReject(ref e, code, field);
        _sink.End();
        return false;
    }

    private ref OutputEvent BeginReject(ref InputEvent e, RejectCode code, RequestField field)
    {
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.Answer;
        o.TimestampUs = NowUs;
        o.CorrelationId = e.CorrelationId;
        o.RequestType = e.RequestType;
        o.QueryAnswer = e.RequestType == RequestType.Query;
        o.Reject = code;
        o.RejectField = field;
        o.AmountFen = e.AmountFen;
        o.Institution = e.Institution;
        o.OrderNo = e.OrderNo;
        o.Echo = e.Echo;
        o.ReceivedUs = NowUs;
        return ref o;
    }

    /// <summary>BANK_UNRESOLVED_LIMIT on the bank field; the reason names the bank and the bound, for the caller's message.</summary>
    private void RejectBankUnresolved(ref InputEvent e, Bank bank)
    {
        ref OutputEvent o = ref BeginReject(ref e, RejectCode.BankUnresolvedLimit, RequestField.Bank);
        o.BankCode = bank.Code;
        Span<byte> reasonUtf8 = stackalloc byte[Text32.CapacityBytes];
        System.Text.Unicode.Utf8.TryWrite(reasonUtf8, $"bank {bank.Code:D3} limit {_rules.MaxUnresolvedPerBank}", out int written);
        o.Reason.Set(reasonUtf8[..written]);
        _sink.End();
    }

    private void RejectCommand(ref InputEvent e, RejectCode code, RequestField field)
    {
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.CommandAnswer;
        o.TimestampUs = NowUs;
        o.CorrelationId = e.CorrelationId;
        o.Reject = code;
        o.RejectField = field;
        _sink.End();
    }

    private void AcceptCommand(ref InputEvent e, Bank bank, long auditNo)
    {
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.CommandAnswer;
        o.TimestampUs = NowUs;
        o.CorrelationId = e.CorrelationId;
        o.BankIndex = bank.Index;
        o.BankCode = bank.Code;
        o.AuditNo = auditNo;
        _sink.End();
    }

    /// <summary>
    /// One audit entry, numbered in engine order. About a bank: its weights after the change (and the ramp's
    /// progress for ramp entries); about an endpoint too: its admin state, reachability and breaker. Complete
    /// enough that a view rebuilt from the entries alone matches the logic's.
    /// </summary>
    private long EmitAudit(AuditKind kind, Bank? bank, int endpointIndex, in Text32 operatorId, in Text64 note, long batchId = 0)
    {
        long auditNo = ++LastAuditNo;
        ref OutputEvent o = ref _sink.Begin();
        o.Kind = OutputKind.Audit;
        o.TimestampUs = NowUs;
        o.AuditNo = auditNo;
        o.AuditKind = kind;
        o.BankIndex = -1;
        o.EndpointIndex = endpointIndex;
        o.BatchId = batchId;
        o.Operator = operatorId;
        o.Note = note;
        if (bank is not null)
        {
            o.BankIndex = bank.Index;
            o.BankCode = bank.Code;
            o.EndpointCount = bank.Endpoints.Length;
            for (int i = 0; i < bank.Endpoints.Length; i++)
            {
                o.WeightsBps[i] = bank.Endpoints[i].WeightBps;
            }
            if (kind is AuditKind.RampStarted or AuditKind.RampStep or AuditKind.RampDone or AuditKind.RampCancelled)
            {
                WeightRamp ramp = bank.Ramp;
                o.RampTargetBps = ramp.TargetBps;
                o.RampSteps = ramp.Steps;
                o.RampStepsDone = ramp.StepsDone;
                o.RampNextStepUs = ramp.Active ? ramp.NextStepUs : 0;
            }
            if (endpointIndex >= 0)
            {
                Endpoint endpoint = bank.Endpoints[endpointIndex];
                o.EndpointState = endpoint.State;
                o.Reachable = endpoint.Reachable;
                o.Breaker = endpoint.Breaker.State;
            }
        }
        _sink.End();
        return auditNo;
    }


    private void FillTransaction(ref OutputEvent o, ref Transaction tx)
    {
        Institution inst = _institutions[tx.InstitutionIndex];
        o.TimestampUs = NowUs;
        o.TransactionId = tx.Id;
        o.RequestType = tx.Type;
        o.Status = tx.Status;
        o.InstitutionIndex = tx.InstitutionIndex;
        o.BankIndex = tx.BankIndex;
        o.BankCode = _banks[tx.BankIndex].Code;
        o.EndpointIndex = tx.EndpointIndex;
        o.AmountFen = tx.AmountFen;
        o.FeeFen = tx.FeeFen;
        o.FeedNo = tx.FeedNo;
        o.BatchId = tx.BatchId;
        o.ReceivedUs = tx.ReceivedUs;
        o.FinalUs = tx.FinalUs;
        o.Institution.Set(inst.CodeUtf8);
        o.OrderNo = tx.OrderNo;
        o.Account = tx.Account;
        o.Reason = tx.Reason;
        o.Echo = tx.Echo;
    }

    private void EmitAnswer(ref Transaction tx, long correlationId, bool duplicate, bool queryAnswer = false)
    {
        ref OutputEvent o = ref _sink.Begin();
        FillTransaction(ref o, ref tx);
        o.Kind = OutputKind.Answer;
        o.CorrelationId = correlationId;
        o.Duplicate = duplicate;
        o.QueryAnswer = queryAnswer;
        _sink.End();
    }

    private void EmitFeed(ref Transaction tx)
    {
        ref OutputEvent o = ref _sink.Begin();
        FillTransaction(ref o, ref tx);
        o.Kind = OutputKind.Feed;
        _sink.End();
    }

    private void EmitBankRequest(ref Transaction tx, BankOperation operation, int endpointIndex, int attempt)
    {
        ref OutputEvent o = ref _sink.Begin();
        FillTransaction(ref o, ref tx);
        o.Kind = OutputKind.BankRequest;
        o.Operation = operation;
        o.EndpointIndex = endpointIndex;
        o.Attempt = attempt;
        // The first request carries the transaction's deadline; a query or reversal gets a deadline of its own.
        o.BankDeadlineUs = operation is BankOperation.Debit or BankOperation.Credit ? BankDeadlineUs(ref tx) : NowUs + _rules.BankTimeoutMs * MicrosPerMs;
        _sink.End();
    }
}

/// <summary>A bank answer that contradicted a final outcome: kept for the operators, never applied.</summary>
public readonly record struct Discrepancy(long TransactionId, TransactionStatus Final, TransactionStatus Reported, string Reason, long AtUs);
