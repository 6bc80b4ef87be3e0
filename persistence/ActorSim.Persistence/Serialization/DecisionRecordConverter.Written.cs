using System.Text.Json;
using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;

namespace ActorSim.Persistence.Serialization;

public sealed partial class DecisionRecordConverter
{
    /// <summary>The decision events in exactly the bytes <see cref="WriteRecord"/> writes — the fields
    /// in their order, no white space, no escapes, addresses as lower-case "0x…", enum names — matched
    /// against that template from <paramref name="utf8"/>'s start, without a tokenizer: the bulk of a
    /// replay's time was <see cref="Utf8JsonReader"/> taking these records apart (~60 % of the reading,
    /// perf). <paramref name="consumed"/> is where the event's object ends. False for anything else, the
    /// JSON as the journal stored it in earlier builds (jsonb's key order and spaces) included: the
    /// caller then reads it as before (the reader above, then the general path), so a match changes no
    /// result, only the time; tests compare the three on written, reordered and edited records.</summary>
    internal static bool TryMatchEvent(string alias, ReadOnlySpan<byte> utf8, out IDomainEvent? e, out int consumed)
    {
        e = null;
        consumed = 0;
        var m = new Match(utf8);
        switch (alias)
        {
            case "stage2_fault_resolved":
                if (!m.Lit("{\"decision\":"u8) || !m.Record(out var one) || !m.Lit("}"u8)) return false;
                e = new Stage2FaultResolved(one!);
                break;
            case "stage2_faults_resolved":
                if (!m.Lit("{\"decisions\":["u8)) return false;
                var list = new List<DecisionRecord>();
                if (!m.Lit("]"u8))
                {
                    do
                    {
                        if (!m.Record(out var d)) return false;
                        list.Add(d!);
                    } while (m.Lit(","u8));
                    if (!m.Lit("]"u8)) return false;
                }
                if (!m.Lit("}"u8)) return false;
                e = new Stage2FaultsResolved([.. list]);
                break;
            default:
                return false;
        }
        consumed = m.Position;
        return true;
    }

    /// <summary>A record matched from the start of <paramref name="utf8"/> to its end, for tests.</summary>
    internal static bool TryMatchWritten(ReadOnlySpan<byte> utf8, out DecisionRecord? record)
    {
        var m = new Match(utf8);
        if (m.Record(out record) && m.Position == utf8.Length) return true;
        record = null;
        return false;
    }

    /// <summary>A cursor over the bytes: each method matches one piece of the template at the cursor
    /// and moves past it, or returns false (the cursor is then anywhere: the whole match is given up).</summary>
    private ref struct Match(ReadOnlySpan<byte> s)
    {
        private readonly ReadOnlySpan<byte> _s = s;

        public int Position { get; private set; }

        public bool Lit(ReadOnlySpan<byte> lit)
        {
            if (!_s[Position..].StartsWith(lit)) return false;
            Position += lit.Length;
            return true;
        }

        public bool Record(out DecisionRecord? record)
        {
            record = null;
            if (!Lit("{\"inputs\":"u8) || !Inputs(out var inputs) || !Lit(",\"outcome\":"u8) || !Outcome(out var outcome) || !Lit("}"u8)) return false;
            record = new DecisionRecord(inputs!, outcome);
            return true;
        }

        private bool Inputs(out FaultInputs? inputs)
        {
            inputs = null;
            if (!(Lit("{\"vm\":"u8) && Str(out var vm)
                && Lit(",\"vcpu\":"u8) && Int(out var vcpu)
                && Lit(",\"gpa\":"u8) && Hex(out var gpa)
                && Lit(",\"op\":"u8) && Enum<AccessOp>(out var op)
                && Lit(",\"faultIsPerm\":"u8) && Bool(out var faultIsPerm)
                && Lit(",\"faultLevel\":"u8) && Int(out var faultLevel)
                && Lit(",\"slot\":"u8) && Slot(out var slot)
                && Lit(",\"hva\":"u8) && Hex(out var hva)
                && Lit(",\"vma\":"u8) && Vma(out var vma)
                && Lit(",\"pfnHva\":"u8) && Hex(out var pfnHva)
                && Lit(",\"pfn\":{\"status\":"u8) && Enum<PfnStatus>(out var status)
                && Lit(",\"pfn\":"u8) && Hex(out var pfn)
                && Lit(",\"isMapMemory\":"u8) && Bool(out var isMapMemory)
                && Lit(",\"writable\":"u8) && Bool(out var writable)
                && Lit("},\"policy\":{\"ruleSet\":"u8) && Enum<RuleSet>(out var ruleSet)
                && Lit(",\"cpu\":{\"fwb\":"u8) && Bool(out var fwb)
                && Lit(",\"dic\":"u8) && Bool(out var dic)
                && Lit("},\"wordSize\":"u8) && Enum<WordSize>(out var wordSize)
                && Lit("},\"vmHasMte\":"u8) && Bool(out var mte)
                && Lit(",\"ipaBits\":"u8) && Int(out var ipaBits)
                && Lit(",\"sampledSeq\":"u8) && Hex(out var sampled)
                && Lit(",\"seqAtLock\":"u8) && Hex(out var atLock)
                && Lit(",\"inProgressAtLock\":"u8) && Int(out var inProgress)
                && Lit(",\"existingLeaf\":"u8) && Leaf(out var existing)
                && Lit(",\"memcacheTopUpFails\":"u8) && Bool(out var topUpFails)))
                return false;
            // Written only when set, in this order.
            var nisv = Lit(",\"nisv\":true"u8);
            var s1ptw = Lit(",\"s1ptw\":true"u8);
            var cm = Lit(",\"cm\":true"u8);
            var nisvToUser = Lit(",\"nisvToUser\":true"u8);
            if (!Lit("}"u8)) return false;
            inputs = new FaultInputs(VmNames.Intern(vm), vcpu, gpa, op, faultIsPerm, faultLevel, slot, hva, vma, pfnHva,
                new PfnLookup(status, pfn, isMapMemory, writable), Policies.Get(ruleSet, new CpuFeatures(fwb, dic), wordSize),
                mte, ipaBits, sampled, atLock, inProgress, existing, topUpFails, nisv, s1ptw, cm, nisvToUser);
            return true;
        }

        private bool Slot(out Memslot? slot)
        {
            slot = null;
            if (Lit("null"u8)) return true;
            if (Memo(SlotMemo, out slot)) return true;
            var start = Position;
            if (!(Lit("{\"id\":"u8) && Int(out var id)
                && Lit(",\"baseGpa\":"u8) && Hex(out var baseGpa)
                && Lit(",\"size\":"u8) && Hex(out var size)
                && Lit(",\"userspaceAddr\":"u8) && Hex(out var uaddr)
                && Lit(",\"flags\":"u8) && Enum<MemslotFlags>(out var flags)
                && Lit("}"u8)))
                return false;
            slot = new Memslot(id, baseGpa, size, uaddr, flags);
            Remember(SlotMemo, start, slot);
            return true;
        }

        private bool Vma(out VmaSnapshot? vma)
        {
            vma = null;
            if (Lit("null"u8)) return true;
            if (Memo(VmaMemo, out vma)) return true;
            var start = Position;
            if (!(Lit("{\"start\":"u8) && Hex(out var startHva)
                && Lit(",\"end\":"u8) && Hex(out var end)
                && Lit(",\"flags\":"u8) && VmFlagList(out var flags)
                && Lit(",\"pgOff\":"u8) && Hex(out var pgOff)
                && Lit(",\"s1\":"u8) && Enum<MairIndex>(out var s1)
                && Lit("}"u8)))
                return false;
            vma = new VmaSnapshot(startHva, end, flags, pgOff, s1);
            Remember(VmaMemo, start, vma);
            return true;
        }

        private bool Leaf(out Stage2Leaf? leaf)
        {
            leaf = null;
            if (Lit("null"u8)) return true;
            if (!(Lit("{\"gpa\":"u8) && Hex(out var gpa)
                && Lit(",\"level\":"u8) && Int(out var level)
                && Lit(",\"prot\":"u8) && Enum<KvmPgtableProt>(out var prot)
                && Lit(",\"descriptor\":"u8) && Hex(out var descriptor)
                && Lit("}"u8)))
                return false;
            leaf = new Stage2Leaf(gpa, level, prot, descriptor);
            return true;
        }

        private bool Outcome(out FaultOutcome outcome)
        {
            outcome = default;
            if (!(Lit("{\"result\":"u8) && Enum<FaultResult>(out var result)
                && Lit(",\"errno\":"u8) && Enum<Errno>(out var errno)
                && Lit(",\"leaf\":"u8) && Leaf(out var leaf)
                && Lit(",\"prot\":"u8) && Enum<KvmPgtableProt>(out var prot)
                && Lit(",\"path\":"u8) && Enum<DecisionPath>(out var path)
                && Lit("}"u8)))
                return false;
            outcome = new FaultOutcome(result, errno, leaf, prot, path);
            return true;
        }

        /// <summary>An object seen before: the bytes from the cursor to the first '}' are those of an
        /// object matched before (which ended at its first '}'), so they mean the same value.</summary>
        private bool Memo<T>(BytesMemo<T> memo, out T value)
        {
            value = default!;
            var end = _s[Position..].IndexOf((byte)'}');
            if (end < 0 || !memo.TryGet(_s.Slice(Position, end + 1), out value)) return false;
            Position += end + 1;
            return true;
        }

        /// <summary>The object just matched from <paramref name="start"/>, remembered if it is all its
        /// bytes up to its first '}' (what <see cref="Memo{T}(BytesMemo{T}, out T)"/> compares).</summary>
        private readonly void Remember<T>(BytesMemo<T> memo, int start, T value)
        {
            var bytes = _s[start..Position];
            if (bytes.IndexOf((byte)'}') == bytes.Length - 1) memo.Add(bytes, value);
        }

        /// <summary>A list of VM flag names ("[]" for none).</summary>
        private bool VmFlagList(out VmFlags flags)
        {
            flags = VmFlags.VM_NONE;
            if (!Lit("["u8)) return false;
            if (Lit("]"u8)) return true;
            do
            {
                if (!Str(out var name) || !Names<VmFlags>.TryGet(name, DomainEventSerializer.General, single: true, out var bit)) return false;
                flags |= bit;
            } while (Lit(","u8));
            return Lit("]"u8);
        }

        private bool Enum<T>(out T value) where T : struct, System.Enum
        {
            value = default;
            return Str(out var name) && Names<T>.TryGet(name, DomainEventSerializer.General, single: false, out value);
        }

        /// <summary>A string of printable ASCII without escapes (anything else is left to the readers
        /// that decode escapes and check UTF-8).</summary>
        private bool Str(out ReadOnlySpan<byte> value)
        {
            value = default;
            if (!Lit("\""u8)) return false;
            var rest = _s[Position..];
            var q = rest.IndexOf((byte)'"');
            if (q < 0) return false;
            value = rest[..q];
            if (value.ContainsAnyExceptInRange((byte)0x20, (byte)0x7E) || value.Contains((byte)'\\')) return false;
            Position += q + 1;
            return true;
        }

        /// <summary>-?(0|[1-9][0-9]*) within Int32, followed by anything but a digit, '.', 'e' or 'E' (the
        /// template's next piece then decides).</summary>
        private bool Int(out int value)
        {
            value = 0;
            var i = Position;
            var negative = i < _s.Length && _s[i] == (byte)'-';
            if (negative) i++;
            var first = i;
            long v = 0;
            while (i < _s.Length && _s[i] is >= (byte)'0' and <= (byte)'9' && i - first < 11) v = v * 10 + (_s[i++] - '0');
            var digits = i - first;
            if (digits == 0 || digits > 10 || (digits > 1 && _s[first] == (byte)'0')) return false;
            if (i < _s.Length && _s[i] is (byte)'.' or (byte)'e' or (byte)'E' or >= (byte)'0' and <= (byte)'9') return false;
            if (negative) v = -v;
            if (v is < int.MinValue or > int.MaxValue) return false;
            value = (int)v;
            Position = i;
            return true;
        }

        private bool Bool(out bool value)
        {
            value = Lit("true"u8);
            return value || Lit("false"u8);
        }

        /// <summary>"0x" and 1 to 16 lower-case hex digits, as HexUInt64Converter writes them.</summary>
        private bool Hex(out ulong value)
        {
            value = 0;
            if (!Lit("\"0x"u8)) return false;
            var i = Position;
            while (i < _s.Length && i - Position <= 16)
            {
                var c = _s[i];
                var d = c is >= (byte)'0' and <= (byte)'9' ? c - '0' : c is >= (byte)'a' and <= (byte)'f' ? c - 'a' + 10 : -1;
                if (d < 0) break;
                value = (value << 4) | (uint)d;
                i++;
            }
            var digits = i - Position;
            if (digits is 0 or > 16 || i >= _s.Length || _s[i] != (byte)'"') return false;
            Position = i + 1;
            return true;
        }
    }

    // A run's records repeat a few memslots and VMAs (a VMA object with its flag list was a third of
    // matching a record): each is matched once, then recognised by its bytes.
    private static readonly BytesMemo<Memslot?> SlotMemo = new(64);
    private static readonly BytesMemo<VmaSnapshot?> VmaMemo = new(64);

    /// <summary>One string per VM name (a run has a few): not one per record.</summary>
    private static readonly BytesMemo<string> VmNames = new(64);
}
