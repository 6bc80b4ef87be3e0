using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;

namespace ActorSim.Persistence.Serialization;

/// <summary>Reads a <see cref="DecisionRecord"/> — the bulk of every run's events — by hand with
/// <see cref="Utf8JsonReader"/> when it has the shape the serializer writes: every field once, in the
/// written order or any other (PostgreSQL's jsonb gives keys back sorted by length, then bytes),
/// unescaped, addresses as "0x…" strings. Anything else — an escape, a number where a hex string is
/// written, a missing, unknown or repeated field — is read again from the start by the general
/// System.Text.Json path, which decides what it means and gives the error message. So the fast path changes no result, only the time: the general path's reflection over
/// nested records was most of replay's time (bench, replay from a file). Writing is by hand too
/// (<see cref="WriteRecord"/>), in the general path's bytes; those exact bytes are then matched
/// without a tokenizer before this reader is tried (<c>TryMatchEvent</c>, DecisionRecordConverter.Written.cs).</summary>
public sealed partial class DecisionRecordConverter(JsonSerializerOptions general) : JsonConverter<DecisionRecord>
{
    /// <summary>The reader for callers that come without options: the event wrappers and the tests.</summary>
    private static readonly DecisionRecordConverter Fast = new(DomainEventSerializer.General);

    /// <summary>The fast path alone, for tests: false where <see cref="Read"/> would take the general path.</summary>
    public static bool TryReadWritten(ReadOnlySpan<byte> utf8, out DecisionRecord? record)
    {
        var reader = new Utf8JsonReader(utf8);
        record = null;
        return reader.Read() && Fast.TryRecord(ref reader, out record);
    }

    /// <summary>The decision events as written — <c>{"decision":{…}}</c> (stage2_fault_resolved) and
    /// <c>{"decisions":[{…},…]}</c> (stage2_faults_resolved) — read by hand from the reader on the data
    /// object's first token, leaving it on the object's last one. False for any other type or shape
    /// (the reader is then anywhere: the caller starts again from its own copy). Through the general
    /// path the wrapper cost a second tokenizing pass of the whole event (System.Text.Json scans a
    /// value to its end before handing it to a converter).</summary>
    internal static bool TryReadEvent(string alias, ref Utf8JsonReader r, out IDomainEvent? e)
    {
        e = null;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        switch (alias)
        {
            case "stage2_fault_resolved":
                if (!Prop(ref r, "decision"u8) || !Fast.TryRecord(ref r, out var one) || !End(ref r)) return false;
                e = new Stage2FaultResolved(one!);
                return true;
            case "stage2_faults_resolved":
                if (!Prop(ref r, "decisions"u8) || r.TokenType != JsonTokenType.StartArray) return false;
                var list = new List<DecisionRecord>();
                while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                {
                    if (!Fast.TryRecord(ref r, out var d)) return false;
                    list.Add(d!);
                }
                if (r.TokenType != JsonTokenType.EndArray || !End(ref r)) return false;
                e = new Stage2FaultsResolved([.. list]);
                return true;
            default:
                return false;
        }
    }

    public override DecisionRecord? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var checkpoint = reader; // a struct copy: where the general path starts again if the fast one gives up
        if (TryRecord(ref reader, out var record)) return record;
        reader = checkpoint;
        return NestedJsonException.Deserialize<DecisionRecord>(ref reader, general);
    }

    public override void Write(Utf8JsonWriter writer, DecisionRecord value, JsonSerializerOptions options) =>
        WriteRecord(writer, value, general);

    /// <summary>Writes a record by hand, the bytes the general path writes (a test compares them on
    /// every kind of decision): each field in its declared order, addresses as "0x…", and every enum,
    /// flag set or VM flag list as the general path wrote that value the first time it was seen
    /// (<see cref="Texts{T}"/>). The general path spent ~4 µs a record on reflection-driven writing
    /// (1.1 KB of JSON), on every journal write of a batch and every line exported.</summary>
    internal static void WriteRecord(Utf8JsonWriter w, DecisionRecord d, JsonSerializerOptions general)
    {
        var i = d.Inputs;
        w.WriteStartObject();
        w.WritePropertyName(P.Inputs);
        w.WriteStartObject();
        w.WriteString(P.Vm, i.Vm);
        w.WriteNumber(P.Vcpu, i.Vcpu);
        WriteHex(w, P.Gpa, i.Gpa);
        Texts<AccessOp>.Write(w, P.Op, i.Op, general);
        w.WriteBoolean(P.FaultIsPerm, i.FaultIsPerm);
        w.WriteNumber(P.FaultLevel, i.FaultLevel);
        w.WritePropertyName(P.Slot);
        if (i.Slot is { } slot)
        {
            w.WriteStartObject();
            w.WriteNumber(P.Id, slot.Id);
            WriteHex(w, P.BaseGpa, slot.BaseGpa);
            WriteHex(w, P.Size, slot.Size);
            WriteHex(w, P.UserspaceAddr, slot.UserspaceAddr);
            Texts<MemslotFlags>.Write(w, P.Flags, slot.Flags, general);
            w.WriteEndObject();
        }
        else w.WriteNullValue();
        WriteHex(w, P.Hva, i.Hva);
        w.WritePropertyName(P.Vma);
        if (i.Vma is { } vma)
        {
            w.WriteStartObject();
            WriteHex(w, P.Start, vma.Start);
            WriteHex(w, P.End, vma.End);
            Texts<VmFlags>.Write(w, P.Flags, vma.Flags, general);
            WriteHex(w, P.PgOff, vma.PgOff);
            Texts<MairIndex>.Write(w, P.S1, vma.S1, general);
            w.WriteEndObject();
        }
        else w.WriteNullValue();
        WriteHex(w, P.PfnHva, i.PfnHva);
        w.WritePropertyName(P.Pfn);
        w.WriteStartObject();
        Texts<PfnStatus>.Write(w, P.Status, i.Pfn.Status, general);
        WriteHex(w, P.Pfn, i.Pfn.Pfn);
        w.WriteBoolean(P.IsMapMemory, i.Pfn.IsMapMemory);
        w.WriteBoolean(P.Writable, i.Pfn.Writable);
        w.WriteEndObject();
        w.WritePropertyName(P.Policy);
        w.WriteStartObject();
        Texts<RuleSet>.Write(w, P.RuleSet, i.Policy.RuleSet, general);
        w.WritePropertyName(P.Cpu);
        w.WriteStartObject();
        w.WriteBoolean(P.Fwb, i.Policy.Cpu.Fwb);
        w.WriteBoolean(P.Dic, i.Policy.Cpu.Dic);
        w.WriteEndObject();
        Texts<WordSize>.Write(w, P.WordSize, i.Policy.WordSize, general);
        w.WriteEndObject();
        w.WriteBoolean(P.VmHasMte, i.VmHasMte);
        w.WriteNumber(P.IpaBits, i.IpaBits);
        WriteHex(w, P.SampledSeq, i.SampledSeq);
        WriteHex(w, P.SeqAtLock, i.SeqAtLock);
        w.WriteNumber(P.InProgressAtLock, i.InProgressAtLock);
        WriteLeaf(w, P.ExistingLeaf, i.ExistingLeaf, general);
        w.WriteBoolean(P.MemcacheTopUpFails, i.MemcacheTopUpFails);
        // Only when set, as General writes them (DomainEventSerializer.OnlyWhenSet).
        if (i.Nisv) w.WriteBoolean(P.Nisv, true);
        if (i.S1ptw) w.WriteBoolean(P.S1ptw, true);
        if (i.Cm) w.WriteBoolean(P.Cm, true);
        if (i.NisvToUser) w.WriteBoolean(P.NisvToUser, true);
        w.WriteEndObject();
        var o = d.Outcome;
        w.WritePropertyName(P.Outcome);
        w.WriteStartObject();
        Texts<FaultResult>.Write(w, P.Result, o.Result, general);
        Texts<Errno>.Write(w, P.Errno, o.Errno, general);
        WriteLeaf(w, P.Leaf, o.Leaf, general);
        Texts<KvmPgtableProt>.Write(w, P.Prot, o.Prot, general);
        Texts<DecisionPath>.Write(w, P.Path, o.Path, general);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteLeaf(Utf8JsonWriter w, JsonEncodedText name, Stage2Leaf? leaf, JsonSerializerOptions general)
    {
        w.WritePropertyName(name);
        if (leaf is not { } l)
        {
            w.WriteNullValue();
            return;
        }
        w.WriteStartObject();
        WriteHex(w, P.Gpa, l.Gpa);
        w.WriteNumber(P.Level, l.Level);
        Texts<KvmPgtableProt>.Write(w, P.Prot, l.Prot, general);
        WriteHex(w, P.Descriptor, l.Descriptor);
        w.WriteEndObject();
    }

    /// <summary>"0x" and lower-case hex digits without leading zeros, as HexUInt64Converter writes them.</summary>
    private static void WriteHex(Utf8JsonWriter w, JsonEncodedText name, ulong value)
    {
        Span<byte> s = stackalloc byte[18];
        s[0] = (byte)'0';
        s[1] = (byte)'x';
        value.TryFormat(s[2..], out var n, "x", System.Globalization.CultureInfo.InvariantCulture);
        w.WriteString(name, s[..(2 + n)]);
    }

    /// <summary>The property names, encoded once.</summary>
    private static class P
    {
        public static readonly JsonEncodedText Inputs = E("inputs"), Outcome = E("outcome"), Vm = E("vm"), Vcpu = E("vcpu"), Gpa = E("gpa"),
            Op = E("op"), FaultIsPerm = E("faultIsPerm"), FaultLevel = E("faultLevel"), Slot = E("slot"), Hva = E("hva"), Vma = E("vma"),
            PfnHva = E("pfnHva"), Pfn = E("pfn"), Policy = E("policy"), VmHasMte = E("vmHasMte"), IpaBits = E("ipaBits"),
            SampledSeq = E("sampledSeq"), SeqAtLock = E("seqAtLock"), InProgressAtLock = E("inProgressAtLock"),
            ExistingLeaf = E("existingLeaf"), MemcacheTopUpFails = E("memcacheTopUpFails"), Nisv = E("nisv"), S1ptw = E("s1ptw"), Cm = E("cm"), NisvToUser = E("nisvToUser"), Id = E("id"), BaseGpa = E("baseGpa"),
            Size = E("size"), UserspaceAddr = E("userspaceAddr"), Flags = E("flags"), Start = E("start"), End = E("end"),
            PgOff = E("pgOff"), S1 = E("s1"), Status = E("status"), IsMapMemory = E("isMapMemory"), Writable = E("writable"),
            RuleSet = E("ruleSet"), Cpu = E("cpu"), Fwb = E("fwb"), Dic = E("dic"), WordSize = E("wordSize"), Result = E("result"),
            Errno = E("errno"), Leaf = E("leaf"), Prot = E("prot"), Path = E("path"), Level = E("level"), Descriptor = E("descriptor");

        private static JsonEncodedText E(string name) => JsonEncodedText.Encode(name);
    }

    /// <summary>Each value's JSON as the general path writes it (a name, a flag list, or a number for a
    /// value without a name), learned once per value.</summary>
    private static class Texts<T> where T : struct
    {
        private static readonly ConcurrentDictionary<T, byte[]> Known = new();

        public static void Write(Utf8JsonWriter w, JsonEncodedText name, T value, JsonSerializerOptions general)
        {
            if (!Known.TryGetValue(value, out var json))
            {
                json = JsonSerializer.SerializeToUtf8Bytes(value, general);
                if (Known.Count < 4096) Known.TryAdd(value, json);
            }
            w.WritePropertyName(name);
            w.WriteRawValue(json, skipInputValidation: true);
        }
    }

    // The fields of each object, in the order the serializer writes them. Any order is read: PostgreSQL's
    // jsonb keeps keys sorted by length, then bytes, so an event read back from the database as text
    // has them in another order than written (replay from the database took the general path for
    // every record: 38 k decisions/s, against 360 k from a file).
    private static readonly Fields RecordFields = new("inputs", "outcome");
    private static readonly Fields InputFields = new Fields("vm", "vcpu", "gpa", "op", "faultIsPerm", "faultLevel", "slot", "hva", "vma", "pfnHva", "pfn",
        "policy", "vmHasMte", "ipaBits", "sampledSeq", "seqAtLock", "inProgressAtLock", "existingLeaf", "memcacheTopUpFails", "nisv", "s1ptw", "cm",
        "nisvToUser")
        .Optional("nisv").Optional("s1ptw").Optional("cm").Optional("nisvToUser");
    private static readonly Fields SlotFields = new("id", "baseGpa", "size", "userspaceAddr", "flags");
    private static readonly Fields VmaFields = new("start", "end", "flags", "pgOff", "s1");
    private static readonly Fields PfnFields = new("status", "pfn", "isMapMemory", "writable");
    private static readonly Fields PolicyFields = new("ruleSet", "cpu", "wordSize");
    private static readonly Fields CpuFields = new("fwb", "dic");
    private static readonly Fields OutcomeFields = new("result", "errno", "leaf", "prot", "path");
    private static readonly Fields LeafFields = new("gpa", "level", "prot", "descriptor");

    /// <summary>The field names of one object; <see cref="Start"/> a cursor over one such object.</summary>
    private sealed class Fields(params string[] names)
    {
        private readonly byte[][] _names = [.. names.Select(System.Text.Encoding.UTF8.GetBytes)];
        private readonly ulong _all = (1UL << names.Length) - 1;
        private ulong _optional;

        /// <summary>A field written only when set (<c>nisv</c>, <c>s1ptw</c>, <c>cm</c>): the object is
        /// complete without it.</summary>
        public Fields Optional(string name)
        {
            _optional |= 1UL << Array.IndexOf(names, name);
            return this;
        }

        public FieldCursor Start() => new(this);

        public int Find(ReadOnlySpan<byte> name, int hint)
        {
            if (hint < _names.Length && name.SequenceEqual(_names[hint])) return hint;
            for (var i = 0; i < _names.Length; i++)
                if (name.SequenceEqual(_names[i])) return i;
            return -1;
        }

        public bool All(ulong seen) => (seen | _optional) == _all;
    }

    /// <summary>Walks one object's fields: <see cref="Next"/> moves the reader onto the next field's
    /// value and sets <see cref="Field"/> to its index; each field must come once, none may be
    /// unknown or escaped. The written order is tried first (a hint), any order is taken.</summary>
    private struct FieldCursor(Fields fields)
    {
        private ulong _seen;
        private int _hint;
        private bool _ended;

        public int Field { get; private set; }

        /// <summary>True with the reader on a field's value; false at the object's end or on anything else.</summary>
        public bool Next(ref Utf8JsonReader r)
        {
            if (!r.Read()) return false;
            if (r.TokenType == JsonTokenType.EndObject)
            {
                _ended = true;
                return false;
            }
            if (r.TokenType != JsonTokenType.PropertyName || r.ValueIsEscaped || r.HasValueSequence) return false;
            var i = fields.Find(r.ValueSpan, _hint);
            if (i < 0 || (_seen & (1UL << i)) != 0 || !r.Read()) return false;
            _seen |= 1UL << i;
            _hint = i + 1;
            Field = i;
            return true;
        }

        /// <summary>After <see cref="Next"/> returned false: the object ended and every field was read.</summary>
        public readonly bool Complete => _ended && fields.All(_seen);
    }

    private bool TryRecord(ref Utf8JsonReader r, out DecisionRecord? record)
    {
        record = null;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        FaultInputs? inputs = null;
        FaultOutcome outcome = default;
        var o = RecordFields.Start();
        while (o.Next(ref r))
        {
            var ok = o.Field switch
            {
                0 => TryInputs(ref r, out inputs),
                _ => TryOutcome(ref r, out outcome),
            };
            if (!ok) return false;
        }
        if (!o.Complete) return false;
        record = new DecisionRecord(inputs!, outcome);
        return true;
    }

    private bool TryInputs(ref Utf8JsonReader r, out FaultInputs? inputs)
    {
        inputs = null;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        string? vm = null;
        int vcpu = 0, faultLevel = 0, ipaBits = 0, inProgress = 0;
        ulong gpa = 0, hva = 0, pfnHva = 0, sampled = 0, atLock = 0;
        AccessOp op = default;
        bool faultIsPerm = false, mte = false, topUpFails = false, nisv = false, s1ptw = false, cm = false, nisvToUser = false;
        Memslot? slot = null;
        VmaSnapshot? vma = null;
        PfnLookup pfn = default;
        KernelPolicy? policy = null;
        Stage2Leaf? existing = null;
        var o = InputFields.Start();
        while (o.Next(ref r))
        {
            var ok = o.Field switch
            {
                0 => Str(ref r, out vm),
                1 => Int(ref r, out vcpu),
                2 => Hex(ref r, out gpa),
                3 => Enum(ref r, out op),
                4 => Bool(ref r, out faultIsPerm),
                5 => Int(ref r, out faultLevel),
                6 => TrySlot(ref r, out slot),
                7 => Hex(ref r, out hva),
                8 => TryVma(ref r, out vma),
                9 => Hex(ref r, out pfnHva),
                10 => TryPfn(ref r, out pfn),
                11 => TryPolicy(ref r, out policy),
                12 => Bool(ref r, out mte),
                13 => Int(ref r, out ipaBits),
                14 => Hex(ref r, out sampled),
                15 => Hex(ref r, out atLock),
                16 => Int(ref r, out inProgress),
                17 => TryLeaf(ref r, out existing),
                18 => Bool(ref r, out topUpFails),
                19 => Bool(ref r, out nisv),
                20 => Bool(ref r, out s1ptw),
                21 => Bool(ref r, out cm),
                _ => Bool(ref r, out nisvToUser),
            };
            if (!ok) return false;
        }
        if (!o.Complete) return false;
        inputs = new FaultInputs(vm!, vcpu, gpa, op, faultIsPerm, faultLevel, slot, hva, vma, pfnHva, pfn, policy!,
            mte, ipaBits, sampled, atLock, inProgress, existing, topUpFails, nisv, s1ptw, cm, nisvToUser);
        return true;
    }

    /// <summary>A memslot object or null, the reader on its first token.</summary>
    private bool TrySlot(ref Utf8JsonReader r, out Memslot? slot)
    {
        slot = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        int id = 0;
        ulong baseGpa = 0, size = 0, uaddr = 0;
        MemslotFlags flags = default;
        var o = SlotFields.Start();
        while (o.Next(ref r))
        {
            var ok = o.Field switch
            {
                0 => Int(ref r, out id),
                1 => Hex(ref r, out baseGpa),
                2 => Hex(ref r, out size),
                3 => Hex(ref r, out uaddr),
                _ => Enum(ref r, out flags),
            };
            if (!ok) return false;
        }
        if (!o.Complete) return false;
        slot = new Memslot(id, baseGpa, size, uaddr, flags);
        return true;
    }

    /// <summary>A VMA snapshot or null, the reader on its first token.</summary>
    private bool TryVma(ref Utf8JsonReader r, out VmaSnapshot? vma)
    {
        vma = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        ulong start = 0, end = 0, pgOff = 0;
        VmFlags flags = default;
        MairIndex s1 = default;
        var o = VmaFields.Start();
        while (o.Next(ref r))
        {
            var ok = o.Field switch
            {
                0 => Hex(ref r, out start),
                1 => Hex(ref r, out end),
                2 => TryVmFlags(ref r, out flags),
                3 => Hex(ref r, out pgOff),
                _ => Enum(ref r, out s1),
            };
            if (!ok) return false;
        }
        if (!o.Complete) return false;
        vma = new VmaSnapshot(start, end, flags, pgOff, s1);
        return true;
    }

    private bool TryPfn(ref Utf8JsonReader r, out PfnLookup pfn)
    {
        pfn = default;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        PfnStatus status = default;
        ulong value = 0;
        bool isMapMemory = false, writable = false;
        var o = PfnFields.Start();
        while (o.Next(ref r))
        {
            var ok = o.Field switch
            {
                0 => Enum(ref r, out status),
                1 => Hex(ref r, out value),
                2 => Bool(ref r, out isMapMemory),
                _ => Bool(ref r, out writable),
            };
            if (!ok) return false;
        }
        if (!o.Complete) return false;
        pfn = new PfnLookup(status, value, isMapMemory, writable);
        return true;
    }

    private bool TryPolicy(ref Utf8JsonReader r, out KernelPolicy? policy)
    {
        policy = null;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        RuleSet ruleSet = default;
        WordSize wordSize = default;
        bool fwb = false, dic = false;
        var o = PolicyFields.Start();
        while (o.Next(ref r))
        {
            var ok = o.Field switch
            {
                0 => Enum(ref r, out ruleSet),
                1 => TryCpu(ref r, out fwb, out dic),
                _ => Enum(ref r, out wordSize),
            };
            if (!ok) return false;
        }
        if (!o.Complete) return false;
        policy = Policies.Get(ruleSet, new CpuFeatures(fwb, dic), wordSize);
        return true;
    }

    private static bool TryCpu(ref Utf8JsonReader r, out bool fwb, out bool dic)
    {
        fwb = dic = false;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        var o = CpuFields.Start();
        while (o.Next(ref r))
            if (!(o.Field == 0 ? Bool(ref r, out fwb) : Bool(ref r, out dic))) return false;
        return o.Complete;
    }

    private bool TryOutcome(ref Utf8JsonReader r, out FaultOutcome outcome)
    {
        outcome = default;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        FaultResult result = default;
        Errno errno = default;
        Stage2Leaf? leaf = null;
        KvmPgtableProt prot = default;
        DecisionPath path = default;
        var o = OutcomeFields.Start();
        while (o.Next(ref r))
        {
            var ok = o.Field switch
            {
                0 => Enum(ref r, out result),
                1 => Enum(ref r, out errno),
                2 => TryLeaf(ref r, out leaf),
                3 => Enum(ref r, out prot),
                _ => Enum(ref r, out path),
            };
            if (!ok) return false;
        }
        if (!o.Complete) return false;
        outcome = new FaultOutcome(result, errno, leaf, prot, path);
        return true;
    }

    /// <summary>A leaf object or null, the reader on its first token.</summary>
    private bool TryLeaf(ref Utf8JsonReader r, out Stage2Leaf? leaf)
    {
        leaf = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        ulong gpa = 0, descriptor = 0;
        int level = 0;
        KvmPgtableProt prot = default;
        var o = LeafFields.Start();
        while (o.Next(ref r))
        {
            var ok = o.Field switch
            {
                0 => Hex(ref r, out gpa),
                1 => Int(ref r, out level),
                2 => Enum(ref r, out prot),
                _ => Hex(ref r, out descriptor),
            };
            if (!ok) return false;
        }
        if (!o.Complete) return false;
        leaf = new Stage2Leaf(gpa, level, prot, descriptor);
        return true;
    }

    private bool TryVmFlags(ref Utf8JsonReader r, out VmFlags flags)
    {
        flags = VmFlags.VM_NONE;
        if (r.TokenType != JsonTokenType.StartArray) return false;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.String || r.ValueIsEscaped || !Names<VmFlags>.TryGet(r.ValueSpan, general, single: true, out var bit)) return false;
            flags |= bit;
        }
        return r.TokenType == JsonTokenType.EndArray;
    }

    /// <summary>Moves to the next property, which must be <paramref name="name"/> written without
    /// escapes, and onto its value (false otherwise). The event-log line reader uses it too.</summary>
    internal static bool Prop(ref Utf8JsonReader r, ReadOnlySpan<byte> name) =>
        r.Read() && r.TokenType == JsonTokenType.PropertyName && !r.ValueIsEscaped && r.ValueSpan.SequenceEqual(name) && r.Read();

    private static bool End(ref Utf8JsonReader r) => r.Read() && r.TokenType == JsonTokenType.EndObject;

    // The value readers: the reader is on the value.
    private static bool Str(ref Utf8JsonReader r, out string? value)
    {
        value = null;
        if (r.TokenType != JsonTokenType.String || r.ValueIsEscaped) return false;
        value = r.GetString();
        return true;
    }

    private static bool Int(ref Utf8JsonReader r, out int value)
    {
        value = 0;
        return r.TokenType == JsonTokenType.Number && r.TryGetInt32(out value);
    }

    private static bool Bool(ref Utf8JsonReader r, out bool value)
    {
        value = r.TokenType == JsonTokenType.True;
        return r.TokenType is JsonTokenType.True or JsonTokenType.False;
    }

    /// <summary>"0x" and 1 to 16 hex digits, as HexUInt64Converter writes them.</summary>
    private static bool Hex(ref Utf8JsonReader r, out ulong value)
    {
        value = 0;
        if (r.TokenType != JsonTokenType.String || r.ValueIsEscaped || r.HasValueSequence) return false;
        var s = r.ValueSpan;
        if (s.Length < 3 || s.Length > 18 || s[0] != '0' || s[1] != 'x') return false;
        for (var i = 2; i < s.Length; i++)
        {
            var c = s[i];
            var d = c is >= (byte)'0' and <= (byte)'9' ? c - '0' : c is >= (byte)'a' and <= (byte)'f' ? c - 'a' + 10 : c is >= (byte)'A' and <= (byte)'F' ? c - 'A' + 10 : -1;
            if (d < 0) return false;
            value = (value << 4) | (uint)d;
        }
        return true;
    }

    private bool Enum<T>(ref Utf8JsonReader r, out T value) where T : struct, System.Enum
    {
        value = default;
        return r.TokenType == JsonTokenType.String && !r.ValueIsEscaped && !r.HasValueSequence && Names<T>.TryGet(r.ValueSpan, general, single: false, out value);
    }

    /// <summary>The values of the names seen so far, each learned once from the general path (so a
    /// name means here what it means there: flag combinations, case, numbers). Looked up by their UTF-8
    /// bytes in a short list (an enum's names, or the VM flags a run uses): every record has a dozen
    /// names and a VM flag list, and turning each into chars for a dictionary was ~15 % of a record's
    /// reading.</summary>
    private static class Names<T> where T : struct
    {
        private static readonly BytesMemo<T> Known = new(256);

        public static bool TryGet(ReadOnlySpan<byte> utf8, JsonSerializerOptions general, bool single, out T value) =>
            Known.TryGet(utf8, out value) || TryLearn(utf8, general, single, out value);

        private static bool TryLearn(ReadOnlySpan<byte> utf8, JsonSerializerOptions general, bool single, out T value)
        {
            value = default;
            if (Known.Full || utf8.Length > 128) return false;
            var name = System.Text.Encoding.UTF8.GetString(utf8);
            try
            {
                // A VM flag is one element of a list; everything else is a JSON string of its own.
                var json = single ? JsonSerializer.Serialize(new[] { name }) : JsonSerializer.Serialize(name);
                value = JsonSerializer.Deserialize<T>(json, general);
            }
            catch (JsonException)
            {
                return false;
            }
            Known.Add(utf8, value);
            return true;
        }
    }

    /// <summary>One KernelPolicy object per (rule set, CPU, word size): every record of a run has the same.</summary>
    internal static class Policies
    {
        private static readonly ConcurrentDictionary<(RuleSet, CpuFeatures, WordSize), KernelPolicy> Known = new();

        public static KernelPolicy Get(RuleSet ruleSet, CpuFeatures cpu, WordSize wordSize) =>
            Known.GetOrAdd((ruleSet, cpu, wordSize), k => new KernelPolicy(k.Item1, k.Item2, k.Item3));
    }
}
