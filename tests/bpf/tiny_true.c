// SPDX-License-Identifier: Apache-2.0
/* A process that lives well under a millisecond: statically linked, exits
 * at once. Used to check that short-lived processes are all seen. */
int main(void) { return 0; }
