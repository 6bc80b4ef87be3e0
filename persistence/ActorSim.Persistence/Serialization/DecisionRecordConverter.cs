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
/// <see cref="Utf8JsonReader"/> when it has exactly the shape the serializer writes (every field, in
/// the written order, unescaped, addresses as "0x…" strings). Anything else — another field order, an
/// escape, a number where a hex string is written, a missing or unknown field — is read again from the
/// start by the general System.Text.Json path, which decides what it means and gives the error
/// message. So the fast path changes no result, only the time: the general path's reflection over
/// nested records was most of replay's time (bench, replay from a file). Writing always takes the
/// general path.</summary>
public sealed class DecisionRecordConverter(JsonSerializerOptions general) : JsonConverter<DecisionRecord>
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
        return JsonSerializer.Deserialize<DecisionRecord>(ref reader, general);
    }

    public override void Write(Utf8JsonWriter writer, DecisionRecord value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(writer, value, general);

    private bool TryRecord(ref Utf8JsonReader r, out DecisionRecord? record)
    {
        record = null;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        if (!Prop(ref r, "inputs"u8) || !TryInputs(ref r, out var inputs)) return false;
        if (!Prop(ref r, "outcome"u8) || !TryOutcome(ref r, out var outcome)) return false;
        if (!End(ref r)) return false;
        record = new DecisionRecord(inputs!, outcome);
        return true;
    }

    private bool TryInputs(ref Utf8JsonReader r, out FaultInputs? inputs)
    {
        inputs = null;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        if (!Prop(ref r, "vm"u8) || r.TokenType != JsonTokenType.String || r.ValueIsEscaped) return false;
        var vm = r.GetString()!;
        if (!Int(ref r, "vcpu"u8, out var vcpu) || !Hex(ref r, "gpa"u8, out var gpa) || !Enum(ref r, "op"u8, out AccessOp op)
            || !Bool(ref r, "faultIsPerm"u8, out var faultIsPerm) || !Int(ref r, "faultLevel"u8, out var faultLevel)) return false;
        Memslot? slot = null;
        if (!Prop(ref r, "slot"u8)) return false;
        if (r.TokenType != JsonTokenType.Null)
        {
            if (r.TokenType != JsonTokenType.StartObject || !Int(ref r, "id"u8, out var id) || !Hex(ref r, "baseGpa"u8, out var baseGpa)
                || !Hex(ref r, "size"u8, out var size) || !Hex(ref r, "userspaceAddr"u8, out var uaddr)
                || !Enum(ref r, "flags"u8, out MemslotFlags slotFlags) || !End(ref r)) return false;
            slot = new Memslot(id, baseGpa, size, uaddr, slotFlags);
        }
        if (!Hex(ref r, "hva"u8, out var hva)) return false;
        VmaSnapshot? vma = null;
        if (!Prop(ref r, "vma"u8)) return false;
        if (r.TokenType != JsonTokenType.Null)
        {
            if (r.TokenType != JsonTokenType.StartObject || !Hex(ref r, "start"u8, out var start) || !Hex(ref r, "end"u8, out var end)
                || !Prop(ref r, "flags"u8) || !TryVmFlags(ref r, out var flags) || !Hex(ref r, "pgOff"u8, out var pgOff)
                || !Enum(ref r, "s1"u8, out MairIndex s1) || !End(ref r)) return false;
            vma = new VmaSnapshot(start, end, flags, pgOff, s1);
        }
        if (!Hex(ref r, "pfnHva"u8, out var pfnHva)) return false;
        if (!Prop(ref r, "pfn"u8) || r.TokenType != JsonTokenType.StartObject || !Enum(ref r, "status"u8, out PfnStatus status)
            || !Hex(ref r, "pfn"u8, out var pfn) || !Bool(ref r, "isMapMemory"u8, out var isMapMemory)
            || !Bool(ref r, "writable"u8, out var writable) || !End(ref r)) return false;
        if (!Prop(ref r, "policy"u8) || r.TokenType != JsonTokenType.StartObject || !Enum(ref r, "ruleSet"u8, out RuleSet ruleSet)
            || !Prop(ref r, "cpu"u8) || r.TokenType != JsonTokenType.StartObject || !Bool(ref r, "fwb"u8, out var fwb)
            || !Bool(ref r, "dic"u8, out var dic) || !End(ref r) || !Enum(ref r, "wordSize"u8, out WordSize wordSize) || !End(ref r)) return false;
        if (!Bool(ref r, "vmHasMte"u8, out var mte) || !Int(ref r, "ipaBits"u8, out var ipaBits) || !Hex(ref r, "sampledSeq"u8, out var sampled)
            || !Hex(ref r, "seqAtLock"u8, out var atLock) || !Int(ref r, "inProgressAtLock"u8, out var inProgress)
            || !Prop(ref r, "existingLeaf"u8) || !TryLeaf(ref r, out var existing)
            || !Bool(ref r, "memcacheTopUpFails"u8, out var topUpFails) || !End(ref r)) return false;
        inputs = new FaultInputs(vm, vcpu, gpa, op, faultIsPerm, faultLevel, slot, hva, vma, pfnHva,
            new PfnLookup(status, pfn, isMapMemory, writable), Policies.Get(ruleSet, new CpuFeatures(fwb, dic), wordSize),
            mte, ipaBits, sampled, atLock, inProgress, existing, topUpFails);
        return true;
    }

    private bool TryOutcome(ref Utf8JsonReader r, out FaultOutcome outcome)
    {
        outcome = default;
        if (r.TokenType != JsonTokenType.StartObject || !Enum(ref r, "result"u8, out FaultResult result) || !Enum(ref r, "errno"u8, out Errno errno)
            || !Prop(ref r, "leaf"u8) || !TryLeaf(ref r, out var leaf) || !Enum(ref r, "prot"u8, out KvmPgtableProt prot)
            || !Enum(ref r, "path"u8, out DecisionPath path) || !End(ref r)) return false;
        outcome = new FaultOutcome(result, errno, leaf, prot, path);
        return true;
    }

    /// <summary>A leaf object or null, the reader on its first token.</summary>
    private bool TryLeaf(ref Utf8JsonReader r, out Stage2Leaf? leaf)
    {
        leaf = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.StartObject || !Hex(ref r, "gpa"u8, out var gpa) || !Int(ref r, "level"u8, out var level)
            || !Enum(ref r, "prot"u8, out KvmPgtableProt prot) || !Hex(ref r, "descriptor"u8, out var descriptor) || !End(ref r)) return false;
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

    private static bool Int(ref Utf8JsonReader r, ReadOnlySpan<byte> name, out int value)
    {
        value = 0;
        return Prop(ref r, name) && r.TokenType == JsonTokenType.Number && r.TryGetInt32(out value);
    }

    private static bool Bool(ref Utf8JsonReader r, ReadOnlySpan<byte> name, out bool value)
    {
        value = false;
        if (!Prop(ref r, name)) return false;
        value = r.TokenType == JsonTokenType.True;
        return r.TokenType is JsonTokenType.True or JsonTokenType.False;
    }

    /// <summary>"0x" and 1 to 16 hex digits, as HexUInt64Converter writes them.</summary>
    private static bool Hex(ref Utf8JsonReader r, ReadOnlySpan<byte> name, out ulong value)
    {
        value = 0;
        if (!Prop(ref r, name) || r.TokenType != JsonTokenType.String || r.ValueIsEscaped) return false;
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

    private bool Enum<T>(ref Utf8JsonReader r, ReadOnlySpan<byte> name, out T value) where T : struct, System.Enum
    {
        value = default;
        return Prop(ref r, name) && r.TokenType == JsonTokenType.String && !r.ValueIsEscaped && Names<T>.TryGet(r.ValueSpan, general, single: false, out value);
    }

    /// <summary>The values of the names seen so far, each learned once from the general path (so a
    /// name means here what it means there: flag combinations, case, numbers).</summary>
    private static class Names<T> where T : struct
    {
        private static readonly ConcurrentDictionary<string, T> Known = new(StringComparer.Ordinal);
        private static readonly ConcurrentDictionary<string, T>.AlternateLookup<ReadOnlySpan<char>> ByChars = Known.GetAlternateLookup<ReadOnlySpan<char>>();

        public static bool TryGet(ReadOnlySpan<byte> utf8, JsonSerializerOptions general, bool single, out T value)
        {
            Span<char> chars = stackalloc char[128];
            value = default;
            if (utf8.Length > chars.Length) return false;
            var n = System.Text.Encoding.UTF8.GetChars(utf8, chars);
            if (ByChars.TryGetValue(chars[..n], out value)) return true;
            if (Known.Count >= 1024) return false;
            var name = new string(chars[..n]);
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
            Known.TryAdd(name, value);
            return true;
        }
    }

    /// <summary>One KernelPolicy object per (rule set, CPU, word size): every record of a run has the same.</summary>
    private static class Policies
    {
        private static readonly ConcurrentDictionary<(RuleSet, CpuFeatures, WordSize), KernelPolicy> Known = new();

        public static KernelPolicy Get(RuleSet ruleSet, CpuFeatures cpu, WordSize wordSize) =>
            Known.GetOrAdd((ruleSet, cpu, wordSize), k => new KernelPolicy(k.Item1, k.Item2, k.Item3));
    }
}
