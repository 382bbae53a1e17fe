package api

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// TokenMetadataKey is the gRPC metadata key that carries the ACL token
// (its SecretID) of a request.
const TokenMetadataKey = "x-chainstore-token"

// ErrorInfo reasons and metadata keys of ACL denials.
const (
	// ReasonPermissionDenied: the token lacks a permission
	// (PermissionDenied; MetaPermission names it, MetaName the service).
	ReasonPermissionDenied = "PERMISSION_DENIED"
	// ReasonACLNotFound: the token matches no stored token (wrong or
	// deleted), PermissionDenied with the text "ACL not found".
	ReasonACLNotFound = "ACL_NOT_FOUND"
	MetaPermission    = "permission"
)

// WithToken returns ctx carrying token in its outgoing metadata, for calls
// made with a token other than the client's.
func WithToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, TokenMetadataKey, token)
}

// hasToken reports whether ctx already carries a token.
func hasToken(ctx context.Context) bool {
	md, ok := metadata.FromOutgoingContext(ctx)
	return ok && len(md.Get(TokenMetadataKey)) > 0
}

// tokenUnary adds token to every unary call that carries none.
func tokenUnary(token string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if token != "" && !hasToken(ctx) {
			ctx = WithToken(ctx, token)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// tokenStream adds token to every stream that carries none.
func tokenStream(token string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if token != "" && !hasToken(ctx) {
			ctx = WithToken(ctx, token)
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
}

// ACL returns a client of the ACL service on the client's connection.
func (c *Client) ACL() chainstorev1.ACLServiceClient { return chainstorev1.NewACLServiceClient(c.conn) }
