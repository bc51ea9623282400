/* The device cgroup on cgroup v2 (plan directive app-device-filter): a
 * BPF_PROG_TYPE_CGROUP_DEVICE program made from the app's allow rules, loaded with
 * bpf(BPF_PROG_LOAD) and attached (BPF_PROG_ATTACH, BPF_CGROUP_DEVICE) to the app's
 * cgroup by the outer helper before any process of the app joins it. The kernel
 * runs it on every open and mknod of a device node by a process of that cgroup:
 * it returns 1 (allowed) when some rule matches the device's type, major, minor
 * and every access asked for, else 0 (EPERM). The program stays attached (the
 * cgroup holds it) until the cgroup is removed.
 *
 * Rules: a comma list of TYPE:MAJOR:MINOR:ACCESS, TYPE c or b, MAJOR and MINOR
 * decimal or *, ACCESS a non-empty subset of r, w, m ("c:1:3:rwm,c:136:*:rw"). */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_DEV_RULES 256
#define DEV_ANY (-1)

int devrules_parse(const char *list, struct dev_rule **out, int *n, const char **bad)
{
	char *copy = xstrdup(list), *save = NULL;
	*out = NULL;
	*n = 0;
	for (char *r = strtok_r(copy, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
		char *f[5], *s2 = NULL;
		int nf = 0;
		for (char *t = strtok_r(r, ":", &s2); t && nf < 5; t = strtok_r(NULL, ":", &s2))
			f[nf++] = t;
		struct dev_rule d = { 0 };
		*bad = "rule (want TYPE:MAJOR:MINOR:ACCESS)";
		if (nf != 4 || *n >= MAX_DEV_RULES)
			goto fail;
		*bad = "device type (want c or b)";
		if (strcmp(f[0], "c") && strcmp(f[0], "b"))
			goto fail;
		d.type = f[0][0] == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
		for (int k = 1; k <= 2; k++) {
			uint64_t v;
			*bad = "major or minor (want a number or *)";
			if (!strcmp(f[k], "*"))
				v = (uint64_t)-1;
			else if (parse_uint(f[k], 10, 0xfffff, &v) < 0)
				goto fail;
			*(k == 1 ? &d.major : &d.minor) = v == (uint64_t)-1 ? DEV_ANY : (int64_t)v;
		}
		*bad = "access (want some of r, w, m)";
		for (const char *a = f[3]; *a; a++) {
			unsigned bit = *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE : *a == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
			if (!bit || (d.access & bit))
				goto fail;
			d.access |= bit;
		}
		if (!d.access)
			goto fail;
		*(struct dev_rule *)vec_push(out, n, sizeof(struct dev_rule)) = d;
	}
	free(copy);
	if (!*n) {
		*bad = "rule list (empty)";
		return -1;
	}
	return 0;
fail:
	free(copy);
	free(*out);
	*out = NULL;
	*n = 0;
	return -1;
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn i = { .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
	return i;
}

/* The program: r2 = access, r3 = type, r4 = major, r5 = minor (struct
 * bpf_cgroup_dev_ctx: access_type = access << 16 | type, major, minor); then one
 * block per rule that returns 1 when it matches (every asked access bit allowed),
 * jumping to the next block at the first mismatch; 0 at the end. */
static struct bpf_insn *devrules_program(const struct dev_rule *r, int n, int *len)
{
	struct bpf_insn *p = xmalloc(sizeof *p * (size_t)(6 + 8 * n + 2));
	int k = 0;
	p[k++] = insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0);
	p[k++] = insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
	p[k++] = insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_3, 0, 0, 0xffff);
	p[k++] = insn(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_2, 0, 0, 16);
	p[k++] = insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0);
	p[k++] = insn(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0);
	for (int i = 0; i < n; i++) {
		/* its size: 4 checks of type and access, one each for a major and a minor
		 * that are not *, and r0 = 1; exit */
		int next = k + 6 + (r[i].major != DEV_ANY) + (r[i].minor != DEV_ANY);
#define JNE(reg, imm) (p[k] = insn(BPF_JMP | BPF_JNE | BPF_K, reg, 0, (int16_t)(next - k - 1), (int32_t)(imm)), k++)
		JNE(BPF_REG_3, r[i].type);
		p[k++] = insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_2, 0, 0);
		p[k++] = insn(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, (int32_t)(~r[i].access & 7u));
		JNE(BPF_REG_1, 0); /* an access asked for that the rule does not give */
		if (r[i].major != DEV_ANY)
			JNE(BPF_REG_4, r[i].major);
		if (r[i].minor != DEV_ANY)
			JNE(BPF_REG_5, r[i].minor);
#undef JNE
		p[k++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
		p[k++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	}
	p[k++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	p[k++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	*len = k;
	return p;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

void devrules_attach(const char *app, const char *cgroup, const struct dev_rule *r, int n)
{
	int len;
	struct bpf_insn *prog = devrules_program(r, n, &len);
	static char log[16384];
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)len;
	a.license = (uint64_t)(uintptr_t) "Apache-2.0";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = sizeof log;
	a.log_level = 1;
	int pfd = sys_bpf(BPF_PROG_LOAD, &a);
	if (pfd < 0) {
		char *nl = strchr(log, '\n'); /* the verifier's first line says why */
		if (nl)
			*nl = 0;
		die("app %s: loading its device filter: %s%s%s", app, strerror(errno), *log ? ": " : "", log);
	}
	free(prog);
	int cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		die("app %s: device filter: cgroup %s: %s", app, cgroup, strerror(errno));
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)cg;
	a.attach_bpf_fd = (uint32_t)pfd;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = 0; /* no other program below it; ancestors' multi ones still run */
	if (sys_bpf(BPF_PROG_ATTACH, &a) < 0)
		die("app %s: attaching its device filter to %s: %s", app, cgroup, strerror(errno));
	close(cg);
	close(pfd); /* the cgroup keeps the program */
}
