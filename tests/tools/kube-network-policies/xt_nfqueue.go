// Copied into sigs.k8s.io/kube-network-policies' pkg/networkpolicy by scripts/test-deps.sh, which
// also makes the controller call xtNFQueue where it built an nftables `queue` expression.
//
// Why: kernels built without CONFIG_NFT_QUEUE (the test machines' kernel among them) refuse the
// native `queue` expression with ENOENT, so the enforcer installs no rule at all. The same verdict
// through the x_tables NFQUEUE target (nft_compat, which iptables-nft uses too) works there, and
// `nft list ruleset` still shows it as `queue num N bypass`.

package networkpolicy

import (
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// nfqueueFlagBypass is NFQ_FLAG_BYPASS: accept the packet when no program listens on the queue.
const nfqueueFlagBypass = 0x01

// xtNFQueue returns `-j NFQUEUE --queue-num queueID [--queue-bypass]` as an nftables expression.
func xtNFQueue(queueID uint16, bypass bool) expr.Any {
	var flags uint16
	if bypass {
		flags = nfqueueFlagBypass
	}
	// struct xt_NFQ_info_v3 { __u16 queuenum; __u16 queues_total; __u16 flags; }, native byte
	// order, padded to XT_ALIGN (8 bytes).
	info := make([]byte, 0, 8)
	info = append(info, binaryutil.NativeEndian.PutUint16(queueID)...)
	info = append(info, binaryutil.NativeEndian.PutUint16(1)...)
	info = append(info, binaryutil.NativeEndian.PutUint16(flags)...)
	info = append(info, 0, 0)
	unknown := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &unknown}
}
